//! globaldns as the Deployment runs it: the built binary, the container's
//! arguments and environment from the kustomized manifests, a
//! ServiceAccount kubeconfig in place of the pod's mounted token, and
//! loopback ports picked by the kernel in place of the container ports.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cluster::config_map_data;

/// The globaldns container of the Deployment in `docs`: its arguments and
/// environment, with `valueFrom` resolved the way the kubelet would
/// (ConfigMap keys from `docs`, `metadata.name` as `pod`), and `$(VAR)`
/// references expanded from `links` (the Service environment variables a
/// pod gets, e.g. `GLOBALDNS_SERVICE_HOST`) and earlier variables.
pub fn container(
    docs: &[Value],
    pod: &str,
    links: &BTreeMap<String, String>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "globaldns")
        .expect("the manifests have the globaldns Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let mut env = links.clone();
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name").to_string();
        let value = if let Some(value) = var["value"].as_str() {
            expand(value, &env)
        } else if let Some(key) = var["valueFrom"]["configMapKeyRef"].as_object() {
            let data = config_map_data(docs, key["name"].as_str().unwrap());
            data[key["key"].as_str().unwrap()].clone()
        } else if var["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
            pod.to_string()
        } else {
            panic!("env {name}: a source the harness does not know: {var}")
        };
        env.insert(name, value);
    }
    let args = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| expand(a.as_str().unwrap(), &env))
        .collect();
    (args, env)
}

/// `$(NAME)` replaced by `env[NAME]`; unknown references stay as written,
/// as the kubelet leaves them.
fn expand(text: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find(')') {
            Some(end) if env.contains_key(&after[..end]) => {
                out.push_str(&env[&after[..end]]);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("$(");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A running `globaldns serve`, stopped (SIGTERM) when dropped.
pub struct Globaldns {
    child: Child,
    pub dns: SocketAddr,
    pub admin: Option<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Globaldns {
    /// Starts the binary with `args` (the container's, with `--listen`,
    /// `--admin` and `--state-dir` replaced for this machine) and `env`,
    /// talking to the API server through `kubeconfig`. Waits until it
    /// serves DNS.
    pub fn start(
        args: &[String],
        env: &BTreeMap<String, String>,
        kubeconfig: &Path,
        state_dir: &Path,
    ) -> Self {
        let mut args: Vec<String> = args
            .iter()
            .filter(|a| {
                !a.starts_with("--listen")
                    && !a.starts_with("--admin")
                    && !a.starts_with("--state-dir")
            })
            .cloned()
            .collect();
        args.push("--listen=127.0.0.1:0".to_string());
        args.push("--admin=127.0.0.1:0".to_string());
        args.push(format!("--state-dir={}", state_dir.display()));
        args.push("--udp-workers=1".to_string());
        let mut child = Command::new(env!("CARGO_BIN_EXE_globaldns"))
            .env_clear()
            .envs(env)
            .env("KUBECONFIG", kubeconfig)
            .env("GLOBALDNS_LOG_FORMAT", "json")
            .env("GLOBALDNS_LOG", "info,globaldns=debug")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("globaldns starts");
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Ok(json) = serde_json::from_str::<Value>(&line) {
                    let fields = &json["fields"];
                    let addr = fields["addr"].as_str().and_then(|a| a.parse().ok());
                    match (fields["message"].as_str(), addr) {
                        (Some(m), Some(addr)) if m.starts_with("admin endpoint") => {
                            let _ = tx.send(("admin", addr));
                        }
                        (Some(m), Some(addr)) if m.starts_with("serving DNS") => {
                            let _ = tx.send(("dns", addr));
                        }
                        _ => {}
                    }
                }
                let mut log = keep.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let (mut dns, mut admin) = (None, None);
        while dns.is_none() {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(("dns", addr)) => dns = Some(addr),
                Ok((_, addr)) => admin = Some(addr),
                Err(_) => {
                    let _ = child.kill();
                    panic!("globaldns {args:?} did not start:\n{}", log.lock().unwrap());
                }
            }
        }
        Self {
            child,
            dns: dns.unwrap(),
            admin,
            log,
        }
    }

    /// Everything it logged so far (JSON lines).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, and waits (up to 20 s) for it to exit.
    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The A answer for `host`: `Ok(None)` for an answer without an
    /// address, `Err(rcode)` for an error answer.
    pub fn resolve(&self, host: &str) -> Result<Option<IpAddr>, ResponseCode> {
        resolve(self.dns, host)
    }

    /// The TXT strings answered for `name`, joined per record.
    pub fn txt(&self, name: &str) -> Vec<String> {
        txt(self.dns, name)
    }

    /// Whether its answer for `host` is marked stale ([`answered_stale`]).
    pub fn stale(&self, host: &str) -> bool {
        answered_stale(self.dns, host)
    }

    /// `GET path` on the admin endpoint: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin.expect("started with --admin"), path)
    }

    /// The value of metric `name` (with its label set, if any, as written
    /// in the exposition, e.g. `x_total{reason="forbidden"}`), 0 if absent.
    pub fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.admin_get("/metrics");
        body.lines()
            .find_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                (series == name).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }
}

impl Drop for Globaldns {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            eprintln!("---- globaldns log ----\n{}", self.log());
        }
    }
}

/// One UDP query for `host` A at `server`, 2 s to answer.
pub fn resolve(server: SocketAddr, host: &str) -> Result<Option<IpAddr>, ResponseCode> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(host).unwrap(), RecordType::A));
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let Ok((len, _)) = socket.recv_from(&mut buf) else {
        return Err(ResponseCode::Unknown(65535)); // no answer at all
    };
    let reply = Message::from_vec(&buf[..len]).expect("a DNS message");
    if reply.metadata.response_code != ResponseCode::NoError {
        return Err(reply.metadata.response_code);
    }
    Ok(reply.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    }))
}

/// One UDP query for `name` TXT at `server`: each record's strings,
/// joined; empty for an answer without TXT.
pub fn txt(server: SocketAddr, name: &str) -> Vec<String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut query = Message::query();
    query.add_query(Query::query(
        Name::from_ascii(name).unwrap(),
        RecordType::TXT,
    ));
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).expect("an answer");
    let reply = Message::from_vec(&buf[..len]).expect("a DNS message");
    reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Whether the answer for `host` at `server` is marked stale (RFC 8914
/// Extended DNS Error 3): served from the last-known-good registry, which
/// the registry source has not confirmed yet.
pub fn answered_stale(server: SocketAddr, host: &str) -> bool {
    use hickory_proto::op::Edns;
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut query = Message::query();
    query.add_query(Query::query(Name::from_ascii(host).unwrap(), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    query.edns = Some(edns);
    socket.send_to(&query.to_vec().unwrap(), server).unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).expect("an answer");
    let reply = Message::from_vec(&buf[..len]).expect("a DNS message");
    reply.edns.as_ref().is_some_and(|edns| {
        edns.options()
            .get_all(EdnsCode::Unknown(15))
            .into_iter()
            .any(|o| matches!(o, EdnsOption::Unknown(_, data) if data.as_slice() == [0, 3]))
    })
}

/// A plain HTTP/1.0 GET on loopback.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("admin endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = reply
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// Polls `check` every 200 ms until it returns `Some`, or panics after
/// `limit` with `what` and the last value seen.
pub fn eventually<T, F: FnMut() -> Option<T>>(limit: Duration, what: &str, mut check: F) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
