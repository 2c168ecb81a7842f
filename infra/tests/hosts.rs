//! Emulated hosts (issue 13): network namespaces on a private bridge, each with its own address
//! and sshd. Reached only over SSH, they see each other and the control machine and nothing
//! beyond their subnet; `down` ends what was started on them and removes every namespace, veth
//! and the bridge. Needs root, as CI runs.

mod common;

use std::path::Path;
use std::time::Duration;

use common::RunDir;
use infra::hosts::{EmulatedHosts, SshHost};

const T: Duration = Duration::from_secs(15);

fn ip(args: &[&str]) -> String {
    let out = std::process::Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The machine's own global IPv4 addresses outside `except` (e.g. eth0's), from the root namespace.
fn outside_addresses(except: &str) -> Vec<String> {
    ip(&["-4", "-o", "addr", "show", "scope", "global"])
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|cidr| cidr.split('/').next())
        .filter(|a| !a.starts_with(except))
        .map(str::to_string)
        .collect()
}

fn running(pid: u32) -> bool {
    infra::all_processes().iter().any(|p| p.pid == pid && !p.dead)
}

#[test]
fn emulated_hosts_are_machines_reached_over_ssh_and_nothing_else() {
    let run = RunDir::new("infra-test-hosts");
    let hosts = EmulatedHosts::create(run.path(), 3).expect("3 emulated hosts");
    let list = hosts.hosts();
    let control = hosts.control_address().to_string();
    let subnet_prefix = control.rsplit_once('.').unwrap().0.to_string() + ".";
    let names: Vec<String> = (0..3).map(|i| hosts.netns(i).to_string()).collect();

    for h in &list {
        // Its own address and no other; no default route: nothing outside the subnet is reachable.
        let addrs = h.run("ip -4 -o addr show scope global", T).unwrap();
        assert_eq!(addrs.lines().count(), 1, "{}: {addrs}", h.name);
        assert!(addrs.contains(&format!("{}/24", h.address)), "{}: {addrs}", h.name);
        let routes = h.run("ip -4 route", T).unwrap();
        assert!(!routes.contains("default"), "{}: {routes}", h.name);
    }

    // Hosts reach each other and the control machine over TCP.
    let (h0, h1, h2) = (&list[0], &list[1], &list[2]);
    h0.run(&format!("timeout 5 bash -c 'echo > /dev/tcp/{}/22'", h1.address), T).expect("host0 -> host1:22");
    let outside = outside_addresses(&subnet_prefix);
    assert!(!outside.is_empty(), "this machine has an address outside the hosts' subnet");
    for a in &outside {
        let refused = h0.run(&format!("timeout 3 bash -c 'echo > /dev/tcp/{a}/22'"), T);
        let e = format!("{:#}", refused.expect_err("an address outside the subnet is unreachable from a host"));
        assert!(e.contains("unreachable"), "{a}: {e}");
    }

    // Files go to a host's own directory.
    let note = run.path().join("note.txt");
    std::fs::write(&note, "shipped\n").unwrap();
    h2.copy_to(&[note.as_path()], &h2.dir.display().to_string(), T).unwrap();
    assert_eq!(h2.run(&format!("cat {}/note.txt", h2.dir.display()), T).unwrap(), "shipped\n");

    // A host key nobody trusts is refused (no prompt, no accept-new).
    let empty = run.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let stranger = SshHost { known_hosts: Some(empty), ..h1.clone() };
    let e = format!("{:#}", stranger.run("true", T).expect_err("unknown host key"));
    assert!(e.contains("verification failed") || e.contains("No ED25519 host key"), "{e}");

    // A server started on a host (detached from the SSH session) ends with the hosts.
    let pid: u32 =
        h1.run("setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $!", T).unwrap().trim().parse().expect("a pid");
    assert!(running(pid));
    hosts.down().expect("teardown");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!running(pid), "the process started on host1 outlived the hosts");
    let namespaces = ip(&["netns", "list"]);
    for n in &names {
        assert!(!namespaces.contains(n.as_str()), "namespace {n} left: {namespaces}");
    }
    assert!(!ip(&["-4", "-o", "addr"]).contains(&control), "the bridge's address is left");
    assert!(!Path::new(&run.path().join("hosts.json")).exists());
}
