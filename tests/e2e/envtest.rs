//! A real Kubernetes control plane on loopback, the envtest way: etcd,
//! kube-apiserver (RBAC on) and kube-controller-manager (namespace, garbage
//! collector and service-account controllers) started from the binaries in
//! `KUBEBUILDER_ASSETS` (the layout `setup-envtest use 1.28 -p path` gives;
//! etcd from there or from `PATH`), each on a loopback port picked here.
//! Nothing schedules or runs pods.
//!
//! [`Envtest`] stops exactly the processes it started when dropped, and
//! removes its directory. The API server can be stopped and started again
//! on the same port and data ([`Envtest::stop_apiserver`]) to stage an outage.
//!
//! Authentication is a static token file (an admin token in
//! `system:masters`); the ServiceAccount tokens the tests run globaldns
//! with come from the TokenRequest API, as in a real cluster.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The admin's bearer token in the API server's token file.
const ADMIN_TOKEN: &str = "globaldns-e2e-admin";
/// The controller manager's own token: its requests are its own in the
/// audit log (which leaves them out), not the admin's.
const CONTROLLER_MANAGER_TOKEN: &str = "globaldns-e2e-controller-manager";

/// A running control plane.
pub struct Envtest {
    dir: tempfile::TempDir,
    assets: PathBuf,
    etcd_port: u16,
    /// The API server's port (https on 127.0.0.1).
    pub api_port: u16,
    etcd: Option<Child>,
    apiserver: Option<Child>,
    controller_manager: Option<Child>,
}

impl Envtest {
    /// Starts etcd, the API server and the controller manager from
    /// `assets`, and waits until the API server's `/readyz` says ok.
    pub fn start(assets: &Path) -> Result<Self, String> {
        for binary in ["kube-apiserver", "kube-controller-manager"] {
            if !assets.join(binary).is_file() {
                return Err(format!(
                    "{} has no {binary} (KUBEBUILDER_ASSETS must name a directory with \
                     kube-apiserver and kube-controller-manager, e.g. from `setup-envtest use 1.28 -p path`)",
                    assets.display()
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("globaldns-envtest-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        make_credentials(dir.path())?;
        let mut envtest = Self {
            dir,
            assets: assets.to_path_buf(),
            etcd_port: 0,
            api_port: 0,
            etcd: None,
            apiserver: None,
            controller_manager: None,
        };
        envtest.start_etcd()?;
        envtest.api_port = free_port()?;
        envtest.write_kubeconfig()?;
        envtest.start_apiserver()?;
        envtest.start_controller_manager()?;
        Ok(envtest)
    }

    /// The admin kubeconfig (`system:masters`), context namespace `default`.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    /// The API server's audit log: every request made by a user other than
    /// the control plane's own, as JSON lines.
    pub fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    fn log(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn spawn(&self, name: &str, program: &Path, args: &[String]) -> Result<Child, String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log(name))
            .map_err(|e| format!("{name} log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))
    }

    fn start_etcd(&mut self) -> Result<(), String> {
        let etcd = which_etcd(&self.assets)?;
        // A port taken between the check and etcd's bind: try others.
        for _ in 0..5 {
            let (client, peer) = (free_port()?, free_port()?);
            let args = vec![
                "--name=e2e".to_string(),
                format!("--data-dir={}", self.dir.path().join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{client}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
                format!("--initial-cluster=e2e=http://127.0.0.1:{peer}"),
                "--unsafe-no-fsync".to_string(),
            ];
            let mut child = self.spawn("etcd", &etcd, &args)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    tracing_note(&format!("etcd exited ({status}), trying other ports"));
                    break;
                }
                if http_get_ok(client, "/health") {
                    self.etcd = Some(child);
                    self.etcd_port = client;
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            stop(&mut child);
        }
        Err(format!(
            "etcd did not start: {}",
            tail(&self.log("etcd"), 20)
        ))
    }

    /// Starts the API server on `api_port` (again, after
    /// [`Envtest::stop_apiserver`], and then the controller manager again
    /// too) and waits for `/readyz`.
    pub fn start_apiserver(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let args = vec![
            format!("--etcd-servers=http://127.0.0.1:{}", self.etcd_port),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={}", self.api_port),
            "--endpoint-reconciler-type=none".to_string(),
            "--service-cluster-ip-range=10.96.0.0/16".to_string(),
            format!("--token-auth-file={}", d.join("tokens.csv").display()),
            format!("--client-ca-file={}", d.join("ca.crt").display()),
            format!("--tls-cert-file={}", d.join("apiserver.crt").display()),
            format!(
                "--tls-private-key-file={}",
                d.join("apiserver.key").display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!("--service-account-key-file={}", d.join("sa.pub").display()),
            format!(
                "--service-account-signing-key-file={}",
                d.join("sa.key").display()
            ),
            "--authorization-mode=Node,RBAC".to_string(),
            format!(
                "--audit-policy-file={}",
                d.join("audit-policy.yaml").display()
            ),
            format!("--audit-log-path={}", self.audit_log().display()),
            "--audit-log-maxsize=200".to_string(),
            "--profiling=false".to_string(),
            "--v=1".to_string(),
        ];
        let program = self.assets.join("kube-apiserver");
        let mut child = self.spawn("kube-apiserver", &program, &args)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "kube-apiserver exited ({status}): {}",
                    tail(&self.log("kube-apiserver"), 30)
                ));
            }
            if readyz(&self.kubeconfig()) {
                self.apiserver = Some(child);
                // After an outage the controller manager starts again too.
                // Kept running across two outages (the watch test's, once
                // a round), it stopped filling in service-account tokens in
                // round 2 of fresh-clone CI runs, three times in three,
                // with nothing in its log: federation's `peer-secret` then
                // timed out. Nothing else here needs it to ride outages out.
                if let Some(mut manager) = self.controller_manager.take() {
                    stop(&mut manager);
                    self.start_controller_manager()?;
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                stop(&mut child);
                return Err(format!(
                    "kube-apiserver not ready in 120 s: {}",
                    tail(&self.log("kube-apiserver"), 30)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the API server (etcd and its data stay): clients see
    /// connection refused until [`Envtest::start_apiserver`].
    pub fn stop_apiserver(&mut self) {
        if let Some(mut child) = self.apiserver.take() {
            stop(&mut child);
        }
    }

    fn start_controller_manager(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let args = vec![
            format!(
                "--kubeconfig={}",
                self.controller_manager_kubeconfig().display()
            ),
            // No serving port: nothing here asks the controller manager.
            "--secure-port=0".to_string(),
            "--leader-elect=false".to_string(),
            "--controllers=namespace,garbagecollector,serviceaccount,serviceaccount-token"
                .to_string(),
            format!("--root-ca-file={}", d.join("ca.crt").display()),
            format!(
                "--service-account-private-key-file={}",
                d.join("sa.key").display()
            ),
            "--use-service-account-credentials=false".to_string(),
            "--v=1".to_string(),
        ];
        let program = self.assets.join("kube-controller-manager");
        let mut child = self.spawn("kube-controller-manager", &program, &args)?;
        std::thread::sleep(Duration::from_millis(500));
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "kube-controller-manager exited ({status}): {}",
                tail(&self.log("kube-controller-manager"), 30)
            ));
        }
        self.controller_manager = Some(child);
        Ok(())
    }

    fn write_kubeconfig(&self) -> Result<(), String> {
        let write = |path: PathBuf, user: &str, token: &str| {
            let text = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: envtest\n  cluster:\n    server: https://127.0.0.1:{}\n    certificate-authority: {}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: envtest\n  context:\n    cluster: envtest\n    user: {user}\n    namespace: default\ncurrent-context: envtest\n",
                self.api_port,
                self.dir.path().join("ca.crt").display()
            );
            std::fs::write(path, text).map_err(|e| e.to_string())
        };
        write(self.kubeconfig(), "admin", ADMIN_TOKEN)?;
        write(
            self.controller_manager_kubeconfig(),
            "kube-controller-manager",
            CONTROLLER_MANAGER_TOKEN,
        )
    }

    fn controller_manager_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("controller-manager.kubeconfig")
    }

    /// The last lines of each component's log, for a failure message.
    pub fn logs(&self) -> String {
        ["etcd", "kube-apiserver", "kube-controller-manager"]
            .iter()
            .map(|name| format!("--- {name} ---\n{}", tail(&self.log(name), 15)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Envtest {
    fn drop(&mut self) {
        for child in [
            self.controller_manager.as_mut(),
            self.apiserver.as_mut(),
            self.etcd.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            stop(child);
        }
    }
}

/// SIGTERM, up to 5 s to exit, then SIGKILL; always reaps.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let pid = Pid::from_raw(child.id() as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn which_etcd(assets: &Path) -> Result<PathBuf, String> {
    let beside = assets.join("etcd");
    if beside.is_file() {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!(
                "no etcd in {} nor on PATH (Debian: apt-get install etcd-server)",
                assets.display()
            )
        })
}

/// A port free on 127.0.0.1 a moment ago (whoever binds it next may lose
/// a race; the callers retry or fail with the component's log).
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// The CA, the API server's serving certificate for 127.0.0.1, the
/// service-account key pair, the token file and the audit policy.
fn make_credentials(dir: &Path) -> Result<(), String> {
    let openssl = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| format!("cannot run openssl: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=globaldns-envtest-ca",
    ])?;
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
    ])?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "30",
        "-extfile",
        "san.ext",
        "-out",
        "apiserver.crt",
    ])?;
    openssl(&["genrsa", "-out", "sa.key", "2048"])?;
    openssl(&["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    std::fs::write(
        dir.join("tokens.csv"),
        format!(
            "{ADMIN_TOKEN},admin,admin,system:masters\n{CONTROLLER_MANAGER_TOKEN},system:kube-controller-manager,kcm,system:masters\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(dir.join("audit-policy.yaml"), AUDIT_POLICY).map_err(|e| e.to_string())
}

/// Everything but the control plane's own requests, at Metadata level:
/// who asked what, with which verb (the sync's request counts come from it).
const AUDIT_POLICY: &str = "\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [\"system:apiserver\", \"system:kube-controller-manager\"]
  - level: None
    userGroups: [\"system:nodes\"]
  - level: None
    nonResourceURLs: [\"/readyz\", \"/livez\", \"/healthz\"]
  - level: Metadata
";

/// Whether `GET http://127.0.0.1:port/path` answers 200 (etcd's health).
fn http_get_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200")
}

/// Whether the API server's `/readyz` says ok, asked with kubectl (which
/// the harness needs anyway, for kustomize).
fn readyz(kubeconfig: &Path) -> bool {
    Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(["get", "--raw=/readyz", "--request-timeout=2s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn tracing_note(text: &str) {
    eprintln!("envtest: {text}");
}
