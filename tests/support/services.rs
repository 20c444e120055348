//! Services of a test's own, to stop and restart mid-test without disturbing the shared ones:
//! a SecantusDB (MongoDB wire) or a redis-server on a free port, restartable on the same port
//! and data directory.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub enum Kind {
    Mongo,
    Redis,
}

pub struct Service {
    kind: Kind,
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Service {
    pub fn start(kind: Kind) -> Service {
        let dir = std::env::temp_dir().join(super::unique("svc"));
        std::fs::create_dir_all(&dir).expect("service dir");
        let mut s = Service {
            kind,
            port: free_port(),
            dir,
            child: None,
        };
        s.up();
        s
    }

    /// (Re)starts the process on the same port and data directory.
    pub fn up(&mut self) {
        let port = self.port.to_string();
        let log = std::fs::File::create(self.dir.join("log")).expect("log");
        let mut cmd = match self.kind {
            Kind::Mongo => {
                let bin = std::env::var("SB_SECANTUSD").unwrap_or_else(|_| {
                    panic!("SB_SECANTUSD is not set: run the suite with scripts/test")
                });
                let mut c = Command::new(bin);
                c.args(["--host", "127.0.0.1", "--port", &port, "--storage-path"])
                    .arg(self.dir.join("data"));
                c
            }
            Kind::Redis => {
                let mut c = Command::new("redis-server");
                c.args([
                    "--port",
                    &port,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ]);
                c
            }
        };
        let child = cmd
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start service");
        self.child = Some(child);
        assert!(
            wait_port(self.port, Duration::from_secs(90)),
            "service on {} did not start",
            self.port
        );
    }

    /// Stops the process (SIGTERM, then SIGKILL after 10 s) and waits for it to exit.
    pub fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
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

    pub fn mongodb_uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}/?protocol=resp3", self.port)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
