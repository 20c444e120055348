//! The real `switchboard` binary as a child process: `PORT=0`, a clean environment, the port
//! learnt from the "listening on" line, `/health` polled with a bounded number of attempts, and
//! SIGTERM on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::env;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mongodb_db: Option<String>,
    pub redis_prefix: Option<String>,
    pub seed_demo: bool,
    pub extra_env: Vec<(String, String)>,
}

impl Options {
    pub fn memory() -> Self {
        Options {
            seed_demo: true,
            ..Default::default()
        }
    }

    /// A two-node deployment's settings: one MongoDB database and one Redis prefix of its own.
    pub fn cluster(tag: &str) -> Self {
        Options {
            mongodb_db: Some(super::unique(tag)),
            redis_prefix: Some(super::unique(tag)),
            seed_demo: true,
            extra_env: vec![],
        }
    }
}

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub log_path: std::path::PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_switchboard")
}

pub fn base_env(cmd: &mut Command, opts: &Options) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("JWT_SECRET", env::JWT_SECRET)
        .env("API_KEYS", env::API_KEY)
        .env("SEEDS_DIR", env::seeds_dir())
        .env("SEED_DEMO", opts.seed_demo.to_string())
        .env("RUST_LOG", "info");
    if let Some(db) = &opts.mongodb_db {
        cmd.env("MONGODB_URI", env::mongodb_uri())
            .env("MONGODB_DB", db);
    }
    if let Some(prefix) = &opts.redis_prefix {
        cmd.env("REDIS_URL", env::redis_url())
            .env("REDIS_PREFIX", prefix);
    }
    for (k, v) in &opts.extra_env {
        cmd.env(k, v);
    }
    // Without MongoDB the server would open ./data, which parallel tests must not share: they
    // get the in-memory store unless they choose a store (and a DATA_DIR) themselves.
    let chosen = cmd
        .get_envs()
        .any(|(k, v)| v.is_some() && (k == "MONGODB_URI" || k == "STORE"));
    if !chosen {
        cmd.env("STORE", "memory");
    }
}

impl Server {
    /// Two nodes of one deployment; only the first seeds the demo data.
    pub async fn start_pair(opts: Options) -> (Server, Server) {
        let a = Server::start(opts.clone()).await;
        let b = Server::start(Options {
            seed_demo: false,
            ..opts
        })
        .await;
        (a, b)
    }

    pub async fn start(opts: Options) -> Server {
        Server::start_without(opts, &[]).await
    }

    /// Like `start`, with some of the harness's variables left unset, to see the server's own
    /// defaults (e.g. SEED_DEMO, JWT_SECRET).
    pub async fn start_without(opts: Options, unset: &'static [&'static str]) -> Server {
        tokio::task::spawn_blocking(move || Server::start_blocking(opts, unset))
            .await
            .expect("start task")
    }

    fn start_blocking(opts: Options, unset: &[&str]) -> Server {
        let log_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("server-logs");
        std::fs::create_dir_all(&log_dir).expect("log dir");
        let log_path = log_dir.join(format!("{}.log", super::unique("server")));
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut cmd = Command::new(bin());
        base_env(&mut cmd, &opts);
        for name in unset {
            cmd.env_remove(name);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn switchboard");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("switchboard listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("switchboard did not print its address within 30 s; log:\n{log}");
            }
        };
        let server = Server {
            child: Some(child),
            addr,
            log_path,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server never accepted connections\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(12);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "switchboard did not exit within 12 s of SIGTERM\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the node dies without any cleanup.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn get(&self, path: &str, auth: Option<(&str, &str)>) -> (u16, serde_json::Value) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let mut req = client.get(format!("{}{path}", self.url()));
        if let Some((k, v)) = auth {
            req = req.header(k, v);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Any method, JSON body optional.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        auth: (&str, &str),
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = client
            .request(method, format!("{}{path}", self.url()))
            .header(auth.0, auth.1);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    pub async fn post(
        &self,
        path: &str,
        auth: (&str, &str),
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let resp = client
            .post(format!("{}{path}", self.url()))
            .header(auth.0, auth.1)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
