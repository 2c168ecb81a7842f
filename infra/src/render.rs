//! Config templates (infra/templates/) with `{{key}}` placeholders.

use anyhow::{bail, Result};

pub const POSTGRESQL_CONF: &str = include_str!("../templates/postgresql.conf");
pub const PGPOOL_CONF: &str = include_str!("../templates/pgpool.conf");
/// pgpool.conf's failover part, by `[pgpool] failover` (topology::Failover).
pub const PGPOOL_FAILOVER_ALONE: &str = include_str!("../templates/pgpool-failover-alone.conf");
pub const PGPOOL_FAILOVER_NEVER: &str = include_str!("../templates/pgpool-failover-never.conf");

/// Replaces every `{{key}}`; an unknown or missing key is an error, not a silent blank.
pub fn render(template: &str, vars: &[(&str, String)]) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else { bail!("unclosed {{{{ in template") };
        let key = &rest[start + 2..start + len];
        match vars.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => out.push_str(v),
            None => bail!("template needs {{{{{key}}}}} but it was not given"),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keys_and_refuses_missing_ones() {
        assert_eq!(render("a {{x}} b {{y}}{{x}}", &[("x", "1".into()), ("y", "2".into())]).unwrap(), "a 1 b 21");
        assert!(render("{{nope}}", &[]).unwrap_err().to_string().contains("{{nope}}"));
    }
}
