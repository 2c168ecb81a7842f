//! docs/openapi.yaml, loaded once, and a validator for the subset of JSON Schema (OpenAPI 3.0
//! flavour) the document uses in responses. A keyword it does not know is an error, so the
//! document cannot quietly rely on something this validator skips.

use serde_json::Value;
use std::sync::OnceLock;

pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

pub struct Doc {
    pub root: Value,
}

pub fn doc() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let root: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
        Doc { root }
    })
}

/// A documented operation matched by a concrete request.
pub struct Operation<'a> {
    pub template: &'a str,
    pub op: &'a Value,
}

impl Doc {
    /// Every (METHOD, path template) in the document.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut ops = Vec::new();
        for (path, item) in self.root["paths"].as_object().expect("paths") {
            for m in METHODS {
                if item.get(m).is_some() {
                    ops.push((m.to_uppercase(), path.clone()));
                }
            }
        }
        ops
    }

    pub fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.root["paths"].get(template)?.get(method.to_lowercase())
    }

    /// Parameters of an operation, path-level ones included, with `$ref`s resolved.
    pub fn parameters(&self, method: &str, template: &str) -> Vec<&Value> {
        let item = &self.root["paths"][template];
        let own = self.operation(method, template).and_then(|o| o.get("parameters"));
        [item.get("parameters"), own]
            .into_iter()
            .flatten()
            .flat_map(|p| p.as_array().expect("parameters is a list"))
            .map(|p| self.resolve(p))
            .collect()
    }

    /// The operation a concrete request path (no query) falls under, if any. Literal segments
    /// win over `{param}` segments.
    pub fn find(&self, method: &str, path: &str) -> Option<Operation<'_>> {
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, Operation<'_>)> = None;
        for (template, item) in self.root["paths"].as_object().expect("paths") {
            let t: Vec<&str> = template.split('/').collect();
            if t.len() != segments.len() {
                continue;
            }
            let mut literal = 0;
            let fits = t.iter().zip(&segments).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            let Some(op) = item.get(method.to_lowercase()) else { continue };
            if fits && best.as_ref().is_none_or(|(l, _)| literal > *l) {
                best = Some((literal, Operation { template, op }));
            }
        }
        best.map(|(_, op)| op)
    }

    /// Follows a local `$ref` (`#/components/...`), repeatedly.
    pub fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(r) = v.get("$ref").and_then(Value::as_str) {
            let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("only local $refs are supported: {r}"));
            v = self.root.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {r}"));
        }
        v
    }

    /// The documented response for `status` (resolved), or `None` if the status is undocumented.
    pub fn response<'a>(&'a self, op: &'a Value, status: u16) -> Option<&'a Value> {
        op["responses"].get(status.to_string()).map(|r| self.resolve(r))
    }

    /// Checks `value` against `schema`; returns every violation with its JSON path.
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema_obj = schema.as_object().unwrap_or_else(|| panic!("schema at {at} is not an object: {schema}"));
        if let Some(r) = schema_obj.get("$ref") {
            // OpenAPI 3.0: siblings of $ref are ignored, so the document must not have any.
            assert!(
                schema_obj.keys().all(|k| k == "$ref" || k == "description"),
                "$ref with sibling keywords at {at}: {schema}"
            );
            let target = self.resolve(schema);
            assert!(!std::ptr::eq(target, schema), "unresolved $ref {r}");
            return self.check(target, value, at, errors);
        }
        if value.is_null() {
            if schema_obj.get("nullable") != Some(&Value::Bool(true)) {
                errors.push(format!("{at}: null where the schema is not nullable"));
            }
            return;
        }
        for (keyword, arg) in schema_obj {
            match keyword.as_str() {
                "type" => {
                    let want = arg.as_str().expect("type is a string");
                    let ok = match want {
                        "object" => value.is_object(),
                        "array" => value.is_array(),
                        "string" => value.is_string(),
                        "integer" => value.is_i64() || value.is_u64(),
                        "number" => value.is_number(),
                        "boolean" => value.is_boolean(),
                        other => panic!("unknown type {other} at {at}"),
                    };
                    if !ok {
                        errors.push(format!("{at}: expected {want}, got {value}"));
                    }
                }
                "required" => {
                    for name in arg.as_array().expect("required is a list") {
                        let name = name.as_str().expect("required names are strings");
                        if value.is_object() && value.get(name).is_none() {
                            errors.push(format!("{at}: missing required property {name}"));
                        }
                    }
                }
                "properties" => {
                    let Some(obj) = value.as_object() else { continue };
                    for (name, sub) in arg.as_object().expect("properties is an object") {
                        if let Some(v) = obj.get(name) {
                            self.check(sub, v, &format!("{at}.{name}"), errors);
                        }
                    }
                }
                "additionalProperties" => {
                    let Some(obj) = value.as_object() else { continue };
                    let declared = schema_obj.get("properties").and_then(Value::as_object);
                    for (name, v) in obj {
                        if declared.is_some_and(|d| d.contains_key(name)) {
                            continue;
                        }
                        match arg {
                            Value::Bool(true) => {}
                            Value::Bool(false) => errors.push(format!("{at}: property {name} is not in the schema")),
                            sub => self.check(sub, v, &format!("{at}.{name}"), errors),
                        }
                    }
                }
                "items" => {
                    let Some(items) = value.as_array() else { continue };
                    for (i, v) in items.iter().enumerate() {
                        self.check(arg, v, &format!("{at}[{i}]"), errors);
                    }
                }
                "enum" => {
                    if !arg.as_array().expect("enum is a list").contains(value) {
                        errors.push(format!("{at}: {value} is not one of {arg}"));
                    }
                }
                "format" => {
                    let format = arg.as_str().expect("format is a string");
                    // int64/int32 only describe an integer's range; `type` checks the rest, and a
                    // non-string under a string format is reported by `type` too.
                    let Some(s) = value.as_str().filter(|_| !matches!(format, "int64" | "int32")) else { continue };
                    let ok = match format {
                        "uuid" => uuid::Uuid::parse_str(s).is_ok_and(|u| u.hyphenated().to_string() == s),
                        "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
                        "email" => s.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')),
                        other => panic!("unsupported format {other} at {at}"),
                    };
                    if !ok {
                        errors.push(format!("{at}: {s:?} is not a valid {arg}"));
                    }
                }
                "minimum" | "maximum" => {
                    let Some(n) = value.as_f64() else { continue };
                    let bound = arg.as_f64().expect("bound is a number");
                    if (keyword == "minimum" && n < bound) || (keyword == "maximum" && n > bound) {
                        errors.push(format!("{at}: {n} breaks {keyword} {bound}"));
                    }
                }
                "minLength" | "maxLength" => {
                    let Some(s) = value.as_str() else { continue };
                    let n = s.chars().count() as u64;
                    let bound = arg.as_u64().expect("length bound is an integer");
                    if (keyword == "minLength" && n < bound) || (keyword == "maxLength" && n > bound) {
                        errors.push(format!("{at}: length {n} breaks {keyword} {bound}"));
                    }
                }
                "nullable" => {}
                // Annotations: no effect on validity.
                "description" | "default" | "example" | "title" => {}
                other => panic!("the validator does not know keyword {other:?} (at {at}); extend it or the doc"),
            }
        }
    }
}
