//! Each fault's timeline as a picture: its series ([`FaultSeries`]) kept as
//! `faults/<stage>-NN.json` beside faults.json (a run on hosts: `faults/hosts-<stage>-NN.json`)
//! and drawn into `.png`/`.svg` of the same name, with the fault's moments marked; faults.md
//! shows them under the table.

use super::table::FaultRow;
use crate::matrix::Stage;
use crate::observe::faults::FaultSeries;
use crate::observe::{RATE_WINDOW, SCRAPE_INTERVAL};
use crate::report::timeseries::{self, Panel, Picture};
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::Path;

/// The start of the names of a set's files: a stage's loopback rows and its rows on hosts are
/// two sets (faults.json), and a run of one replaces only its own set's pictures.
fn prefix(stage: Stage, on_hosts: bool) -> String {
    match on_hosts {
        false => format!("{stage}-"),
        true => format!("hosts-{stage}-"),
    }
}

/// Where fault `n` (0-based, among its set's rows) keeps its series and picture, from `out`.
pub fn stem(stage: Stage, on_hosts: bool, n: usize) -> String {
    format!("faults/{}{:02}", prefix(stage, on_hosts), n + 1)
}

fn panel(title: &str, y: &str, lines: &[crate::observe::series::Series], spread: f64) -> Panel {
    Panel { title: title.into(), y_desc: y.into(), lines: lines.to_vec(), spread }
}

/// The picture of one fault: the clients, the web instances' answers, the targets up, and the
/// state panels the stage has data for.
pub fn picture(row: &FaultRow, s: &FaultSeries) -> Picture {
    let mut panels = vec![
        panel(
            "Requests finished per second, by what the client got (the bench's timeline)",
            "requests/s",
            &s.clients,
            0.0,
        ),
        panel(
            &format!("Answers/s of the web instances by status class (Prometheus, over {RATE_WINDOW})"),
            "answers/s",
            &s.status,
            0.0,
        ),
        panel("Scrape targets up per tier (Prometheus)", "targets", &s.up, 0.0),
    ];
    let optional = [
        ("pgpool's view of each backend (SHOW POOL_NODES): 1 up, 0.5 waiting, 0 down; gap: no answer; lines drawn 0.04 apart", "state", &s.pgpool_nodes, 0.04),
        ("The web instances' PostgreSQL pool connections per pgpool endpoint", "connections", &s.pools, 0.0),
        ("Redis role per instance: 1 master, 0 replica; gap: not answering; lines drawn 0.04 apart", "role", &s.redis_roles, 0.04),
        ("Redis replication lag per replica, as the master reports it (offset difference)", "bytes", &s.redis_lag, 0.0),
    ];
    for (title, y, lines, spread) in optional {
        if !lines.is_empty() {
            panels.push(panel(title, y, lines, spread));
        }
    }
    Picture {
        title: format!("{}: {} ({})", row.stage, row.fault, row.instance),
        span: (0.0, s.end - s.start),
        panels,
        marks: s.marks.clone(),
    }
}

fn draw(out: &Path, stem: &str, row: &FaultRow, s: &FaultSeries) -> Result<()> {
    timeseries::draw(&picture(row, s), &out.join(format!("{stem}.png")), &out.join(format!("{stem}.svg")))
}

/// Keeps and draws the series of the new rows of `stage` (on hosts or not; that set's old files
/// removed first) and names each picture in its row.
pub fn save(
    out: &Path,
    stage: Stage,
    on_hosts: bool,
    rows: &mut [FaultRow],
    series: &[Option<FaultSeries>],
) -> Result<()> {
    let dir = out.join("faults");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let prefix = prefix(stage, on_hosts);
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (n, (row, s)) in rows.iter_mut().zip(series).enumerate() {
        let Some(s) = s else { continue };
        let stem = stem(stage, on_hosts, n);
        std::fs::write(out.join(format!("{stem}.json")), serde_json::to_string(s)?)
            .with_context(|| format!("writing {stem}.json"))?;
        draw(out, &stem, row, s)?;
        row.timeline = Some(stem);
    }
    Ok(())
}

/// Draws every row's picture again from its kept series (rows whose series are not there keep
/// the picture they have).
pub fn redraw(out: &Path, rows: &[FaultRow]) -> Result<()> {
    for row in rows {
        let Some(stem) = &row.timeline else { continue };
        let path = out.join(format!("{stem}.json"));
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let s: FaultSeries = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        draw(out, stem, row, &s)?;
    }
    Ok(())
}

/// faults.md's pictures, one per row that has one; nothing when none has.
pub fn section(md: &mut String, rows: &[FaultRow]) {
    let drawn: Vec<(&FaultRow, &String)> = rows.iter().filter_map(|r| Some((r, r.timeline.as_ref()?))).collect();
    if drawn.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## Over time\n\n\
         Per fault, its load second by second: what the clients got (from the bench's own timeline), and what the \
         run's Prometheus (scraping every {SCRAPE_INTERVAL}) saw of the servers: the web instances' answers by status \
         class, the scrape targets up per tier, pgpool's view of each backend, the web instances' connection pools \
         and, in stages with Redis, each instance's role and the replicas' replication lag. Dashed lines: the fault, \
         the start of the way back (restart, SIGCONT, sessions closed) and when the instance was back. The series \
         are kept beside the pictures (`faults/<stage>-NN.json`); `faults --redraw` draws them again.\n"
    );
    for (r, stem) in drawn {
        let _ =
            writeln!(md, "**{}: {} ({})**\n\n![{} {}]({stem}.png)\n", r.stage, r.fault, r.instance, r.stage, r.target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::series::Series;

    fn series() -> FaultSeries {
        let line = |name: &str, v: &[f64]| Series {
            name: name.into(),
            points: v.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)).collect(),
        };
        FaultSeries {
            start: 1000.0,
            end: 1006.0,
            marks: vec![(2.0, "SIGKILL".into()), (4.0, "restart".into()), (5.0, "back".into())],
            clients: vec![line("ok", &[50.0, 20.0, 0.0, 10.0, 50.0]), line("5xx", &[0.0, 3.0, 8.0, 1.0, 0.0])],
            status: vec![line("2xx", &[60.0, 30.0, 5.0, 20.0, 60.0])],
            up: vec![line("postgres", &[2.0, 1.0, 1.0, 2.0, 2.0])],
            pgpool_nodes: vec![Series {
                name: "pgpool 127.0.0.1:1: node 1".into(),
                points: vec![(1.0, 1.0), (4.0, 0.0)],
            }],
            ..FaultSeries::default()
        }
    }

    #[test]
    fn a_fault_s_series_are_kept_drawn_and_shown() {
        let out = std::env::temp_dir().join(format!("bench-fault-pictures-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(out.join("faults")).unwrap();
        std::fs::write(out.join("faults/pg-07.png"), "an old run's").unwrap();
        std::fs::write(out.join("faults/redis-01.png"), "another stage's").unwrap();
        std::fs::write(out.join("faults/hosts-pg-01.png"), "the stage's rows on hosts").unwrap();
        let mut rows = vec![
            FaultRow::default(),
            FaultRow {
                stage: Stage::Pg,
                fault: "SIGKILL postgres 1".into(),
                target: "postgres 1".into(),
                ..FaultRow::default()
            },
        ];
        save(&out, Stage::Pg, false, &mut rows, &[None, Some(series())]).unwrap();
        assert_eq!((rows[0].timeline.as_deref(), rows[1].timeline.as_deref()), (None, Some("faults/pg-02")));
        assert!(!out.join("faults/pg-07.png").exists(), "the stage's old pictures go");
        assert!(out.join("faults/redis-01.png").exists(), "other stages' stay");
        assert!(out.join("faults/hosts-pg-01.png").exists(), "the stage's pictures on hosts stay");
        let mut on_hosts = rows.clone();
        save(&out, Stage::Pg, true, &mut on_hosts, &[Some(series()), None]).unwrap();
        assert_eq!(on_hosts[0].timeline.as_deref(), Some("faults/hosts-pg-01"));
        assert!(out.join("faults/pg-02.png").exists(), "a run on hosts leaves the loopback pictures");
        let svg = std::fs::read_to_string(out.join("faults/pg-02.svg")).unwrap();
        for text in ["SIGKILL", "restart", "pgpool&apos;s view of each backend", "Scrape targets up per tier", "5xx"] {
            assert!(svg.contains(text) || svg.contains(&text.replace("&apos;", "'")), "{text} not drawn");
        }
        assert!(!svg.contains("Redis role"), "no Redis panel without Redis series");
        std::fs::remove_file(out.join("faults/pg-02.svg")).unwrap();
        redraw(&out, &rows).unwrap();
        assert!(out.join("faults/pg-02.svg").exists(), "drawn again from the kept series");
        let mut md = String::new();
        section(&mut md, &rows);
        assert!(md.contains("![pg postgres 1](faults/pg-02.png)"), "{md}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
