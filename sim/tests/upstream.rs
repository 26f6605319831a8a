//! `kube-sim upstream` as an operator starts it by hand: `ready <url>`, then kubectl against
//! real controllers (`get nodes,pods -A`, `rollout restart`, `rollout status`), the proxy
//! injected by the webhook, SIGUSR1 restarting kube-apiserver on the same port, and SIGTERM
//! stopping every process and removing the control plane's directory.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap()
}

fn ok(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wait_for(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The pids of a process's children, whichever of its threads started them.
fn grandchildren(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut children: Vec<u32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    children.sort();
    children
}

/// The control planes' directories in the temporary directory.
fn workdirs() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("kube-sim-upstream-")
        })
        .collect()
}

#[test]
fn started_by_hand_it_serves_kubectl_with_real_controllers_and_cleans_up() {
    if !kube_sim::upstream::available_for_tests() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let before = workdirs();
    let mut command = Command::new(env!("CARGO_BIN_EXE_kube-sim"));
    command
        .args(["upstream", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // It dies with this test binary even when that is killed (its own children die with it).
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut upstream = command.spawn().unwrap();
    let pid = upstream.id();
    // Killed even if an assertion fails: the child's own children die with it (PR_SET_PDEATHSIG).
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = upstream.stdout.take().unwrap();
    let mut upstream = Kill(upstream);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("ready ")
        .unwrap_or_else(|| panic!("not ready: {line:?}"))
        .trim()
        .to_string();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let processes = grandchildren(pid);
    assert_eq!(
        processes.len(),
        5,
        "etcd, kube-apiserver, controller manager, scheduler, kwok"
    );
    let workdir: Vec<_> = workdirs().difference(&before).cloned().collect();
    assert_eq!(workdir.len(), 1, "its own directory");

    let listing = ok(&kubeconfig, &["get", "nodes,pods", "-A"]);
    assert!(
        listing.contains("kwok-node-0") && listing.contains("Ready"),
        "{listing}"
    );
    let version = ok(&kubeconfig, &["version", "-o", "json"]);
    assert!(version.contains("\"gitVersion\": \"v1.34"), "{version}");

    let injector = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"istio-sidecar-injector","namespace":"istio-system"},"data":{"values":"{\"global\":{\"hub\":\"docker.io/istio\",\"tag\":\"1.24.1\"}}"}}"#;
    let file = dir.path().join("injector.json");
    std::fs::write(&file, injector).unwrap();
    ok(&kubeconfig, &["apply", "-f", file.to_str().unwrap()]);
    ok(&kubeconfig, &["create", "namespace", "shop"]);
    ok(
        &kubeconfig,
        &["label", "namespace", "shop", "istio-injection=enabled"],
    );
    ok(
        &kubeconfig,
        &[
            "-n",
            "shop",
            "create",
            "deployment",
            "orders",
            "--image=shop/orders:1",
            "--replicas=2",
        ],
    );
    ok(
        &kubeconfig,
        &[
            "-n",
            "shop",
            "rollout",
            "status",
            "deployment/orders",
            "--timeout=60s",
        ],
    );
    ok(
        &kubeconfig,
        &["-n", "shop", "rollout", "restart", "deployment/orders"],
    );
    let status = ok(
        &kubeconfig,
        &[
            "-n",
            "shop",
            "rollout",
            "status",
            "deployment/orders",
            "--timeout=60s",
        ],
    );
    assert!(status.contains("successfully rolled out"), "{status}");
    let images = ok(
        &kubeconfig,
        &[
            "-n",
            "shop",
            "get",
            "pods",
            "-o",
            "jsonpath={.items[*].spec.containers[*].image}",
        ],
    );
    assert!(
        images.contains("docker.io/istio/proxyv2:1.24.1"),
        "injected by the webhook: {images}"
    );

    // SIGUSR1: kube-apiserver killed and started again, same port, same data.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
    wait_for("a new kube-apiserver", Duration::from_secs(30), || {
        grandchildren(pid) != processes
    });
    wait_for(
        "kube-apiserver ready again",
        Duration::from_secs(60),
        || {
            kubectl(&kubeconfig, &["get", "--raw", "/readyz"])
                .status
                .success()
        },
    );
    assert!(ok(&kubeconfig, &["-n", "shop", "get", "deployment", "orders"]).contains("orders"));

    // SIGTERM: every process stopped, the directory removed.
    let all = grandchildren(pid);
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let status = upstream.0.wait().unwrap();
    assert!(status.success(), "{status}");
    for child in all {
        wait_for(
            "the control plane's processes to end",
            Duration::from_secs(10),
            || {
                !std::path::Path::new(&format!("/proc/{child}")).exists()
                    || std::fs::read_to_string(format!("/proc/{child}/stat"))
                        .is_ok_and(|s| s.contains(") Z "))
            },
        );
    }
    for path in workdir {
        wait_for("the directory to go", Duration::from_secs(10), || {
            !path.exists()
        });
    }
}
