//! `DockerCluster` and `DockerRemote` against the real engine (root and a running Docker
//! Engine; cluster `flc1-` on 10.77.104.0/24, removed at the end also when the test fails).
//! Without them the test prints `SKIPPED` unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.

use std::time::{Duration, Instant};

use control::docker::{DockerCluster, DockerOptions, image::default_image};
use control::{Error, Exec, Remote};

const PREFIX: &str = "flc1-";

struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _ = rt.block_on(DockerCluster::down(PREFIX));
    }
}

fn engine_or_skip() -> bool {
    if !control::prereq::privileged_or_skip("docker_cluster", false) {
        return false;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(control::docker::connect()) {
        Ok(_) => true,
        Err(e) if std::env::var("FAULTLINE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") => {
            panic!("{e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: docker_cluster: {e}");
            false
        }
    }
}

#[test]
fn a_container_node_runs_commands_moves_files_and_takes_network_rules() {
    if !engine_or_skip() {
        return;
    }
    // Dropped after the runtime below is gone (the guard runs one of its own).
    let _down = Down;
    tokio::runtime::Runtime::new().unwrap().block_on(body());
}

async fn body() {
    let c = DockerCluster::up(&DockerOptions {
        nodes: 2,
        prefix: PREFIX.into(),
        subnet: "10.77.104.0/24".into(),
        image: default_image(),
    })
    .await
    .unwrap();
    assert_eq!(c.nodes().len(), 2);
    let r = &c.remotes[0];
    assert_eq!(
        (r.node().name.as_str(), r.node().addr.as_str()),
        ("n1", "10.77.104.11")
    );

    // Output, exit status, stdin, env and cwd.
    let out = r
        .run(&Exec::sh("echo out; echo err >&2; exit 3"))
        .await
        .unwrap();
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (3, "out\n", "err\n")
    );
    let out = r
        .run(&Exec::new("cat").stdin(b"through stdin".to_vec()))
        .await
        .unwrap();
    assert_eq!(out.stdout, "through stdin");
    let out = r
        .run(
            &Exec::sh("echo $X $(pwd) $(hostname)")
                .env("X", "1")
                .cwd("/tmp"),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "1 /tmp n1\n");
    assert!(matches!(
        r.exec(&Exec::new("false")).await,
        Err(Error::NonZeroExit { status: 1, .. })
    ));

    // A command past its timeout is reported so and is gone from the node.
    let began = Instant::now();
    let e = r
        .run(&Exec::sh("sleep 30; echo late").timeout(Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(began.elapsed() < Duration::from_secs(10));
    let ps = r.run(&Exec::new("ps").args(["-eo", "args"])).await.unwrap();
    assert!(!ps.stdout.contains("sleep 30"), "{}", ps.stdout);

    // Files in and out.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("f");
    std::fs::write(&local, b"payload\n").unwrap();
    r.upload(&local, "/tmp/a/b/f").await.unwrap();
    let back = dir.path().join("back");
    r.download("/tmp/a/b/f", &back).await.unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"payload\n");
    assert!(r.download("/tmp/none", &back).await.is_err());

    // Network rules from the controller, in this container's namespace only: the image has
    // no iptables.
    assert!(
        !r.run(&Exec::sh("command -v iptables"))
            .await
            .unwrap()
            .success()
    );
    r.exec_net(&Exec::sh(
        "iptables -w 5 -N FLTEST && iptables -w 5 -A FLTEST -s 10.77.104.12 -j DROP && iptables -w 5 -I INPUT -j FLTEST",
    ))
    .await
    .unwrap();
    let rules = r
        .exec_net(&Exec::sh("iptables -w 5 -S FLTEST"))
        .await
        .unwrap();
    assert!(
        rules.stdout.contains("-s 10.77.104.12/32 -j DROP"),
        "{}",
        rules.stdout
    );
    let other = c.remotes[1]
        .run_net(&Exec::sh("iptables -w 5 -S FLTEST"))
        .await
        .unwrap();
    assert!(!other.success(), "the rule leaked to n2: {}", other.stdout);

    // Found again by its label, then removed with everything it made.
    let again = DockerCluster::load(PREFIX).await.unwrap().unwrap();
    assert_eq!(again.nodes(), c.nodes());
    assert_eq!(DockerCluster::down(PREFIX).await.unwrap(), (2, 1));
    assert!(DockerCluster::load(PREFIX).await.unwrap().is_none());
    assert!(!control::docker::shared_dir(PREFIX).exists());
}
