//! `haq ui` in a real headless Chromium (driven through ChromeDriver's WebDriver API) while
//! a real `haq run` of the smoke workflow writes the store it serves: the DAG updates
//! without a reload, a search's chart gains points, two runs compare, an artifact
//! downloads with its digest, paths are refused, and the run's results are byte for byte
//! those of a run with no UI watching.
//!
//! Needs the release binaries and Debian's chromium and chromium-driver (scripts/setup
//! installs them). Screenshots land in target/tmp/ui-screenshots/.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, outputs, wait_until, Project};
use serde_json::{json, Value};

const SMOKE: &str = include_str!("../workflows/smoke.yaml");
/// More episodes in the edge search than the smoke file's 4, so its chart visibly grows
/// while the test watches; the UI and the reference run get the same override (the UI
/// computes the stages' fingerprints from the workflow as it was given).
const OVERRIDES: [&str; 2] = ["--set", "search-edge.episodes=20"];

/// One HTTP/1.1 exchange on a fresh connection: (status, body).
fn http(method: &str, url: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let path = if path.is_empty() { "/" } else { path };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    // Read the head, then exactly Content-Length bytes: ChromeDriver keeps the connection
    // open whatever the request asks.
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let split = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "{url}: the connection closed before the headers");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut payload = raw[split + 4..].to_vec();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    match length {
        Some(len) => {
            while payload.len() < len {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "{url}: the body ended early");
                payload.extend_from_slice(&buf[..n]);
            }
        }
        None => {
            stream.read_to_end(&mut payload).unwrap();
            if head.contains("transfer-encoding: chunked") {
                payload = unchunk(&payload);
            }
        }
    }
    (status, payload)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&data[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

fn get_json(url: &str) -> (u16, Value) {
    let (status, body) = http("GET", url, None);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless Chromium session through ChromeDriver.
struct Browser {
    driver: String,
    session: String,
    _chromedriver: Guard,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: scripts/setup installs Debian's chromium and chromium-driver"
            );
        }
        let port = free_port();
        let chromedriver = Guard(
            Command::new("/usr/bin/chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let driver = format!("http://127.0.0.1:{port}");
        wait_until("chromedriver", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let profile = tempfile::tempdir().unwrap();
        // Flags as the machine's notes say: no sandbox as root, and nothing that reaches for
        // the network this machine does not have.
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            &format!("--user-data-dir={}", profile.path().display()),
        ];
        let (status, body) = http(
            "POST",
            &format!("{driver}/session"),
            Some(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            }}})),
        );
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "no browser session: {body}");
        let session = body["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            driver,
            session,
            _chromedriver: chromedriver,
            _profile: profile,
        }
    }

    fn command(&self, method: &str, what: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}/{what}", self.driver, self.session);
        let (status, reply) = http(method, &url, body.as_ref());
        let reply: Value = serde_json::from_slice(&reply).unwrap();
        assert_eq!(status, 200, "webdriver {what}: {reply}");
        reply["value"].clone()
    }

    fn go(&self, url: &str) {
        self.command("POST", "url", Some(json!({ "url": url })));
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    fn js(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    /// Waits until `script` returns something truthy in the page, and returns it.
    fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Value {
        let start = Instant::now();
        loop {
            let v = self.js(script);
            if !(v.is_null() || v == json!(false) || v == json!(0) || v == json!("")) {
                return v;
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Opens `url` and waits for the page's error banner to say `what`.
    fn expect_banner(&self, url: &str, what: &str) {
        self.go(url);
        let banner = self.wait_for(
            &format!("a banner on {url}"),
            Duration::from_secs(10),
            "const b = document.getElementById('banner'); return !b.hidden && b.textContent",
        );
        assert!(banner.as_str().unwrap().contains(what), "{url}: {banner}");
    }

    fn screenshot(&self, path: &Path) {
        let b64 = self.command("GET", "screenshot", None);
        std::fs::write(path, base64_decode(b64.as_str().unwrap())).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.driver, self.session);
        let _ = std::panic::catch_unwind(|| http("DELETE", &url, None));
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|c| u32::from(value(*c))).collect();
        let n = v.iter().fold(0u32, |acc, x| acc << 6 | x) << (6 * (4 - v.len()));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..v.len()]);
    }
    out
}

/// `haq ui` started on a free port in `project`; returns the process and its URL.
fn start_ui(project: &Project) -> (Guard, String) {
    let mut args = vec!["ui", "-f", "smoke.yaml", "--port", "0"];
    args.extend(OVERRIDES);
    let mut child = project
        .command(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(stdout.read(&mut byte).unwrap(), 1, "haq ui printed no URL");
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    (Guard(child), url)
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / ticks
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_ui_follows_a_live_run_in_chromium_and_changes_nothing() {
    let project = Project::new("");
    std::fs::write(project.path("smoke.yaml"), SMOKE).unwrap();
    let (ui, url) = start_ui(&project);
    let browser = Browser::start();
    let shots = screenshots_dir();

    // Before the first run there is no store: the page says so, and the server stays up.
    let (status, body) = get_json(&format!("{url}/api/dag"));
    assert_eq!(status, 503, "{body}");
    assert!(!project.store_path().exists(), "the UI created no store");
    browser.expect_banner(&format!("{url}/#/"), "no such file yet");
    let boot = browser.js("return window.haqBoot");

    let start = Instant::now();
    let mut args = vec!["run", "-f", "smoke.yaml", "-q"];
    args.extend(OVERRIDES);
    let mut run = Guard(
        project
            .command(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );

    // The DAG page, never reloaded, shows a stage running and then done.
    let running = browser.wait_for(
        "a running stage on the DAG page",
        Duration::from_secs(120),
        "const g = document.querySelector('g[data-state=running]'); return g && g.dataset.stage",
    );
    let running = running.as_str().unwrap().to_string();
    println!("watching {running} run");
    browser.screenshot(&shots.join("dag-running.png"));
    browser.wait_for(
        &format!("{running} done on the DAG page"),
        Duration::from_secs(600),
        &format!(
            "const g = document.querySelector('g[data-stage=\"{running}\"]'); \
             return g && g.dataset.state === 'fresh'"
        ),
    );
    assert_eq!(
        browser.js("return window.haqBoot"),
        boot,
        "the page was never reloaded"
    );

    // A search's page: its reward chart gains points while the search runs.
    let search = browser.wait_for(
        "an edge search running",
        Duration::from_secs(900),
        "const g = document.querySelector('g[data-stage^=\"search-edge@\"][data-state=running]'); \
         return g && g.getAttribute('onclick').match(/\\d+/)[0]",
    );
    let search: i64 = search.as_str().unwrap().parse().unwrap();
    browser.go(&format!("{url}/#/search/{search}"));
    let chart = "const c = document.querySelector('svg[data-title=\"reward per episode\"]'); \
                 const n = c ? Number(c.dataset.points) : 0;";
    let points = |what: &str, timeout: u64, until: &str| {
        let script = format!("{chart} return {until}");
        browser
            .wait_for(what, Duration::from_secs(timeout), &script)
            .as_i64()
            .unwrap()
    };
    let first = points("the search chart", 60, "n");
    let later = points(
        "the search chart to gain points",
        300,
        &format!("n > {first} && n"),
    );
    println!("search {search}: the reward chart went from {first} to {later} points live");
    assert!(later > first);
    browser.screenshot(&shots.join("search-running.png"));

    let ui_pid = ui.0.id();
    let status = run.0.wait().unwrap();
    let mut stderr = String::new();
    run.0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "haq run failed: {stderr}");
    let run_s = start.elapsed().as_secs_f64();
    let ui_cpu = cpu_seconds(ui_pid);
    println!(
        "the run took {run_s:.0} s with the page open; haq ui used {ui_cpu:.2} s of CPU ({:.2}%)",
        100.0 * ui_cpu / run_s
    );

    // The finished search: its policy, per layer, with depthwise and pointwise marked.
    browser.go(&format!("{url}/#/search/{search}"));
    let layers = browser.wait_for(
        "the chosen policy",
        Duration::from_secs(30),
        "const b = document.querySelector('svg.bits'); return b && \
         [Number(b.dataset.layers), b.querySelectorAll('[data-mark=dw]').length, \
          b.querySelectorAll('[data-mark=pw]').length]",
    );
    println!("chosen policy: [layers, depthwise, pointwise] = {layers}");
    assert!(
        layers[0].as_i64().unwrap() > 10
            && layers[1].as_i64().unwrap() > 0
            && layers[2].as_i64().unwrap() > 0
    );
    browser.screenshot(&shots.join("search.png"));

    // Compare: two finetunes' curves on one chart, their params side by side.
    let (_, runs) = get_json(&format!("{url}/api/runs"));
    // The fixed 4-bit finetunes at seeds 0 and 1: the seed is the param that differs.
    let finetunes: Vec<i64> = ["pact@4-0", "pact@4-1"]
        .iter()
        .map(|stage| {
            runs.as_array()
                .unwrap()
                .iter()
                .find(|r| r["stage"] == *stage && r["status"] == "done")
                .unwrap_or_else(|| panic!("no done run of {stage}"))["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(finetunes.len(), 2, "two finetune runs");
    browser.go(&format!(
        "{url}/#/compare/{},{}",
        finetunes[0], finetunes[1]
    ));
    let compared = browser.wait_for(
        "the compare page",
        Duration::from_secs(30),
        "const heads = document.querySelectorAll('th[data-compared]').length; \
         const two = document.querySelectorAll('svg[data-series=\"2\"]').length; \
         const diff = document.querySelectorAll('tr.diff').length; \
         return heads === 2 && two > 0 && [heads, two, diff]",
    );
    println!("compare: [runs, two-run charts, differing params] = {compared}");
    assert!(
        compared[2].as_i64().unwrap() > 0,
        "the two finetunes' differing params are marked"
    );
    browser.screenshot(&shots.join("compare.png"));

    // The runs table filters; the DAG is all fresh now; the report is served from the store.
    browser.go(&format!("{url}/#/runs"));
    browser.wait_for(
        "the runs table",
        Duration::from_secs(30),
        "return document.querySelectorAll('tr[data-run]').length > 10",
    );
    let filtered = browser.js(
        "const f = document.getElementById('filter'); f.value = 'kind=finetune status=done'; \
         f.dispatchEvent(new Event('input')); return document.querySelectorAll('tr[data-run]').length",
    );
    let done_finetunes = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "finetune" && r["status"] == "done")
        .count();
    assert_eq!(filtered, json!(done_finetunes));
    browser.go(&format!("{url}/#/"));
    browser.wait_for(
        "every stage fresh",
        Duration::from_secs(30),
        "const g = [...document.querySelectorAll('g[data-stage]')]; \
         return g.length > 10 && g.every(x => x.dataset.state === 'fresh')",
    );
    browser.screenshot(&shots.join("dag.png"));
    let (status, index) = http("GET", &format!("{url}/report/index.html"), None);
    assert_eq!(status, 200);
    assert_eq!(
        index,
        std::fs::read(project.path("reports/smoke/index.html")).unwrap()
    );

    // An artifact downloads by digest, with that digest; anything else is refused.
    let (_, run_page) = get_json(&format!("{url}/api/run/{search}"));
    let policy = run_page["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "policy")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, bytes) = http("GET", &format!("{url}/artifact/{policy}"), None);
    assert_eq!(status, 200);
    assert_eq!(blake3::hash(&bytes).to_hex().as_str(), policy);
    for bad in [
        "/artifact/../../../../etc/passwd",
        "/artifact/..%2F..%2Fetc%2Fpasswd",
        "/report/../../etc/passwd",
        "/report/%2e%2e/%2e%2e/etc/passwd",
    ] {
        let (status, body) = http("GET", &format!("{url}{bad}"), None);
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    assert_eq!(
        http("GET", &format!("{url}/artifact/not-a-digest"), None).0,
        400
    );
    assert_eq!(
        http("GET", &format!("{url}/artifact/{}", "0".repeat(64)), None).0,
        404
    );
    assert_eq!(get_json(&format!("{url}/api/run/99999")).0, 404);
    assert_eq!(http("POST", &format!("{url}/api/runs"), None).0, 405);
    browser.expect_banner(&format!("{url}/#/run/99999"), "no run 99999");
    drop(browser);
    drop(ui);

    // The same run with no UI watching gives the same bytes.
    let reference = Project::new("");
    std::fs::write(reference.path("smoke.yaml"), SMOKE).unwrap();
    let mut args = vec!["run", "-f", "smoke.yaml", "-q"];
    args.extend(OVERRIDES);
    let start = Instant::now();
    ok(&reference.haq(&args));
    println!(
        "the same run without the UI took {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let (watched, unwatched) = (outputs(&project.store()), outputs(&reference.store()));
    assert_eq!(watched.len(), unwatched.len());
    assert_eq!(watched, unwatched, "the UI changed a result");
}
