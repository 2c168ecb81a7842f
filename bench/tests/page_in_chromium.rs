//! The reports' HTML pages in a real browser: headless Chromium (Debian's `chromium`, installed
//! by scripts/install) opens each committed page with every host name unresolvable, so a page
//! that needed the network would show it, and says what it laid out for each chart.
//!
//! The pages carry no script. The test opens a copy with a probe appended (inline, no network):
//! after the load event it writes, per chart, whether its picture decoded and its laid-out size
//! into the DOM, which Chromium then dumps (`--dump-dom`).

use bench::page;
use pulldown_cmark::{Event, Parser, Tag};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Chromium's start and a page's layout take about a second here; a busy machine gets much more.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);

const PROBE: &str = r#"<script>
addEventListener('load', () => {
  const lines = [...document.querySelectorAll('.chart')].map(c => {
    const pic = c.querySelector('svg, img');
    if (!pic) return 'missing 0 0';
    const r = pic.getBoundingClientRect();
    const ok = pic.tagName === 'IMG' ? pic.complete && pic.naturalWidth > 0 : pic.childElementCount > 0;
    return `${pic.tagName.toLowerCase()}${ok ? '' : '-broken'} ${Math.round(r.width)} ${Math.round(r.height)}`;
  });
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = ['tables ' + document.querySelectorAll('table').length, ...lines].join('\n');
  document.body.appendChild(pre);
});
</script>"#;

/// What the browser laid out: the page's table count, then per chart (kind, width, height).
#[derive(Debug)]
struct Seen {
    tables: usize,
    charts: Vec<(String, u32, u32)>,
}

fn chromium() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("chromium")).find(|p| p.is_file()))
        .expect("chromium is not installed: run scripts/install (it installs Debian's chromium package)")
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("bench-chromium-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Opens `html` (a page) with the probe in headless Chromium and reads what it laid out.
fn open(html: &str, scratch: &Path) -> Seen {
    let file = scratch.join("probed.html");
    let body_end = html.rfind("</body>").expect("a page ends its body");
    std::fs::write(&file, format!("{}{PROBE}\n{}", &html[..body_end], &html[body_end..])).unwrap();
    let mut child = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1400,1000"])
        .arg(format!("--user-data-dir={}", scratch.join("profile").display()))
        // Nothing may come from the network: every host name fails to resolve.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND")
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(scratch.join("chromium.log")).unwrap())
        // Its own process group: at the deadline the browser is ended with all its helpers.
        .process_group(0)
        .spawn()
        .expect("starting chromium");
    let started = Instant::now();
    // The dump is read on a thread so that a hung browser is still ended at the deadline.
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).map(|_| dom)
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_DEADLINE {
            // SAFETY: kill(2) on the process group of our own child, which we have not reaped.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            panic!("chromium did not finish {} within {BROWSER_DEADLINE:?}", file.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let dom = reader.join().unwrap().expect("chromium's DOM dump");
    let log = || std::fs::read_to_string(scratch.join("chromium.log")).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}) on {}: {}", file.display(), log());
    let probe = dom
        .split_once("<pre id=\"probe\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .unwrap_or_else(|| panic!("the probe wrote nothing (the page did not load?): {dom:.2000}\nchromium: {}", log()))
        .0;
    let mut lines = probe.lines();
    let tables = lines.next().and_then(|l| l.strip_prefix("tables ")).unwrap().parse().unwrap();
    let charts = lines
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap())
        })
        .collect();
    Seen { tables, charts }
}

/// The pictures and tables a markdown report has.
fn expected(markdown: &str) -> (usize, usize) {
    let events: Vec<Event> = Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES).collect();
    let count = |f: fn(&Event) -> bool| events.iter().filter(|e| f(e)).count();
    (count(|e| matches!(e, Event::Start(Tag::Image { .. }))), count(|e| matches!(e, Event::Start(Tag::Table(_)))))
}

fn assert_all_drawn(seen: &Seen, what: &str) {
    for (kind, w, h) in &seen.charts {
        assert!(kind == "svg" || kind == "img", "{what}: a chart is {kind}: {seen:?}");
        assert!(*w >= 100 && *h >= 100, "{what}: a chart laid out at {w}x{h} px: {seen:?}");
    }
}

#[test]
fn every_committed_report_page_renders_all_its_charts_and_tables() {
    let results = infra::repo_root().join("docs/results");
    let scratch = scratch("committed");
    let mut charts = 0;
    for report in page::REPORTS {
        let md = results.join(report);
        let html = std::fs::read_to_string(page::page_path(&md))
            .unwrap_or_else(|e| panic!("{}: {e}; run `shopbench-bench pages`", page::page_path(&md).display()));
        let (images, tables) = expected(&std::fs::read_to_string(&md).unwrap());
        let seen = open(&html, &scratch);
        assert_eq!(seen.charts.len(), images, "{report}: every chart of the markdown is in the page: {seen:?}");
        assert_eq!(seen.tables, tables, "{report}: every table of the markdown is in the page");
        assert!(tables > 0, "{report} has tables");
        assert_all_drawn(&seen, report);
        charts += images;
    }
    assert!(charts >= 8, "the stages' and the comparison's bar charts at least, saw {charts}");
    std::fs::remove_dir_all(&scratch).unwrap();
}

#[test]
fn a_chart_that_does_not_decode_is_seen_broken() {
    let scratch = scratch("broken");
    std::fs::write(scratch.join("drawn.svg"), include_str!("../../docs/results/pg/reads.svg")).unwrap();
    std::fs::write(scratch.join("good.png"), include_bytes!("../../docs/results/pg/writes.png")).unwrap();
    // A PNG's signature with nothing after it: the data: URI is there, the picture is not.
    std::fs::write(scratch.join("bad.png"), [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]).unwrap();
    let md = "# t\n\n| a |\n|---|\n| 1 |\n\n![svg](drawn.svg)\n\n![png](good.png)\n\n![bad](bad.png)\n";
    let seen = open(&page::render(md, &scratch).unwrap(), &scratch);
    let kinds: Vec<&str> = seen.charts.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(kinds, ["svg", "img", "img-broken"], "{seen:?}");
    assert_all_drawn(&Seen { tables: 1, charts: seen.charts[..2].to_vec() }, "the good charts");
    std::fs::remove_dir_all(&scratch).unwrap();
}
