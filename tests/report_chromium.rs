//! Renders the report of a stored run (a lost write, a reused key, a dual-leader window,
//! `<script>` values) with `faultline report`, opens it in headless Chromium, checks that the
//! page logs no console errors and shows each anomaly, that markup from the history stays
//! text, and saves a screenshot in the store (and in `$FAULTLINE_ARTIFACTS_DIR`).
//! Skips loudly without Chromium unless `FAULTLINE_REQUIRE_PRIVILEGED=1`.

mod stored_run;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FAULTLINE_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|b| std::env::split_paths(&path).map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

/// Runs headless Chromium on `url` with `extra` flags; returns (stdout, stderr).
fn headless(bin: &Path, url: &str, extra: &[String]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null());
    let out_file = profile.path().join("stdout");
    let err_file = profile.path().join("stderr");
    cmd.stdout(std::fs::File::create(&out_file).unwrap());
    cmd.stderr(std::fs::File::create(&err_file).unwrap());
    let mut child = cmd.spawn().expect("failed to start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (
        std::fs::read_to_string(&out_file).unwrap_or_default(),
        std::fs::read_to_string(&err_file).unwrap_or_default(),
    )
}

#[test]
fn report_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var("FAULTLINE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
            panic!(
                "chromium is not installed (apt-get install chromium) and FAULTLINE_REQUIRE_PRIVILEGED=1"
            );
        }
        eprintln!(
            "\n*** SKIPPED report_renders_in_headless_chromium: chromium not found (apt-get install chromium) ***\n"
        );
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let dir = stored_run::make(store.path());
    let report = stored_run::report(&dir);
    let url = format!("file://{}", report.display());

    let (dom, log) = headless(&bin, &url, &["--dump-dom".into()]);
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    assert!(
        dom.contains("INVALID"),
        "no verdict in the DOM: {}",
        &dom[..dom.len().min(500)]
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let kinds = results["anomaly_types"].as_array().unwrap();
    for k in ["lost-write", "reused-key", "dual-leader"] {
        assert!(
            kinds.iter().any(|x| x == k),
            "the checkers found no {k}: {kinds:?}"
        );
    }
    for k in kinds {
        let k = k.as_str().unwrap();
        assert!(dom.contains(&format!("data-kind=\"{k}\"")), "{k} not shown");
    }
    // Markup from the history is text, not elements.
    let lower = dom.to_lowercase();
    assert!(!lower.contains("<script"), "a script element in the DOM");
    assert!(!lower.contains("<img"), "an img element in the DOM");
    assert!(
        dom.contains("&lt;script&gt;alert("),
        "the <script> value is not shown as text"
    );

    let shot = dir.join("report.png");
    headless(
        &bin,
        &url,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000".into(),
            "--hide-scrollbars".into(),
        ],
    );
    let png = std::fs::read(&shot).expect("no screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Some(art) = std::env::var_os("FAULTLINE_ARTIFACTS_DIR") {
        let art = PathBuf::from(art);
        std::fs::create_dir_all(&art).unwrap();
        std::fs::copy(&shot, art.join("report-chromium.png")).unwrap();
        std::fs::copy(&report, art.join("report-chromium.html")).unwrap();
    }
    if let Some(keep) = std::env::var_os("FAULTLINE_KEEP_REPORT") {
        std::fs::copy(&shot, PathBuf::from(keep)).unwrap();
    }
}
