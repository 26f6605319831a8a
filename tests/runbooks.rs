//! The runbooks (`runbooks/`): every link the report emits lands on a file and a heading, every
//! runbook has its Symptoms, Diagnose, Fix and Verify, links between runbooks resolve, and the
//! command blocks marked read-only only read, and work as written against a cluster after the
//! upgrade Job, on kube-sim and on the upstream control plane (needs `kubectl`; without it
//! that test prints a note and passes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use istio_proxy_reset::plan::runbook;
use support::backend::{Backend, Scenario};

mod support;

const SECTIONS: [&str; 4] = ["Symptoms", "Diagnose", "Fix", "Verify"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Heading {
    level: usize,
    text: String,
    anchor: String,
}

#[derive(Debug, Clone)]
struct Block {
    info: String,
    body: String,
    line: usize,
}

#[derive(Debug)]
struct Doc {
    path: String,
    headings: Vec<Heading>,
    blocks: Vec<Block>,
    /// Link targets outside code (`[text](target)`), with their line.
    links: Vec<(String, usize)>,
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`, punctuation dropped
/// (letters, digits, `-` and `_` stay). Repeats get `-1`, `-2`, … (see [`parse`]).
fn anchor(text: &str) -> String {
    text.trim()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

fn parse(path: &str, text: &str) -> Doc {
    let mut doc = Doc {
        path: path.to_string(),
        headings: Vec::new(),
        blocks: Vec::new(),
        links: Vec::new(),
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut fence: Option<(String, Block)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if let Some((marker, block)) = &mut fence {
            if trimmed.starts_with(marker.as_str()) && trimmed.trim_matches('`').is_empty() {
                doc.blocks.push(block.clone());
                fence = None;
            } else {
                block.body.push_str(line);
                block.body.push('\n');
            }
            continue;
        }
        if trimmed.starts_with("```") {
            let ticks = trimmed.chars().take_while(|&c| c == '`').count();
            fence = Some((
                "`".repeat(ticks),
                Block {
                    info: trimmed[ticks..].trim().to_string(),
                    body: String::new(),
                    line: number,
                },
            ));
            continue;
        }
        if line.starts_with('#') {
            let level = line.chars().take_while(|&c| c == '#').count();
            let text = line[level..].trim().to_string();
            let base = anchor(&text);
            let count = seen.entry(base.clone()).or_default();
            let anchor = if *count == 0 {
                base.clone()
            } else {
                format!("{base}-{count}")
            };
            *count += 1;
            doc.headings.push(Heading {
                level,
                text,
                anchor,
            });
        }
        // Links outside inline code.
        let mut in_code = false;
        let mut rest = line;
        let mut outside = String::new();
        while let Some(i) = rest.find('`') {
            if !in_code {
                outside.push_str(&rest[..i]);
            }
            outside.push(' ');
            in_code = !in_code;
            rest = &rest[i + 1..];
        }
        if !in_code {
            outside.push_str(rest);
        }
        let mut from = 0;
        while let Some(i) = outside[from..].find("](") {
            let start = from + i + 2;
            let end = outside[start..]
                .find(')')
                .map(|e| start + e)
                .unwrap_or_else(|| panic!("{path}:{number}: unclosed link"));
            doc.links.push((outside[start..end].to_string(), number));
            from = end;
        }
    }
    assert!(fence.is_none(), "{path}: a code block is never closed");
    doc
}

fn runbooks() -> BTreeMap<String, Doc> {
    let dir = root().join("runbooks");
    let mut docs = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("runbooks/ exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).expect("a runbook is UTF-8");
        docs.insert(name.clone(), parse(&format!("runbooks/{name}"), &text));
    }
    docs
}

/// Resolves `target` as written in `runbooks/<from>` (relative path, optional `#anchor`).
fn resolve(docs: &BTreeMap<String, Doc>, from: &str, target: &str) -> Result<(), String> {
    let (file, fragment) = match target.split_once('#') {
        Some((file, fragment)) => (file, Some(fragment)),
        None => (target, None),
    };
    let file = if file.is_empty() { from } else { file };
    if file.contains('/') || !file.ends_with(".md") {
        let path = root().join("runbooks").join(file);
        return if path.exists() && fragment.is_none() {
            Ok(())
        } else {
            Err(format!("{target}: no such file {}", path.display()))
        };
    }
    let doc = docs
        .get(file)
        .ok_or_else(|| format!("{target}: no runbook {file}"))?;
    match fragment {
        None => Ok(()),
        Some(fragment) if doc.headings.iter().any(|h| h.anchor == fragment) => Ok(()),
        Some(fragment) => Err(format!(
            "{target}: no heading with anchor #{fragment} in {file}; anchors: {:?}",
            doc.headings.iter().map(|h| &h.anchor).collect::<Vec<_>>()
        )),
    }
}

#[test]
fn anchors_follow_github_rules() {
    assert_eq!(anchor("Bare pods"), "bare-pods");
    assert_eq!(anchor("Jobs and CronJobs"), "jobs-and-cronjobs");
    assert_eq!(
        anchor("An eviction blocked by a PodDisruptionBudget"),
        "an-eviction-blocked-by-a-poddisruptionbudget"
    );
    assert_eq!(anchor("Re-running"), "re-running");
    assert_eq!(anchor("`plan` (dry run), again!"), "plan-dry-run-again");
    let doc = parse("x.md", "## Fix\n### Fix\n```sh\n# Fix\n```\n## Fix\n");
    let anchors: Vec<&str> = doc.headings.iter().map(|h| h.anchor.as_str()).collect();
    assert_eq!(anchors, ["fix", "fix-1", "fix-2"], "code is not a heading");
}

#[test]
fn every_link_the_report_emits_exists() {
    let docs = runbooks();
    assert!(!runbook::ALL.is_empty());
    for link in runbook::ALL {
        let target = link
            .strip_prefix("runbooks/")
            .unwrap_or_else(|| panic!("{link} is not under runbooks/"));
        if let Err(problem) = resolve(&docs, "README.md", target) {
            panic!("the report links to {link}, which does not resolve: {problem}");
        }
    }
}

#[test]
fn every_runbook_has_symptoms_diagnose_fix_verify() {
    let docs = runbooks();
    for name in [
        "README.md",
        "upgrade-job.md",
        "dry-run.md",
        "pods-not-running.md",
        "workloads-not-restartable.md",
        "recovery.md",
    ] {
        assert!(docs.contains_key(name), "runbooks/{name} exists");
    }
    for (name, doc) in docs.iter().filter(|(n, _)| n.as_str() != "README.md") {
        let titles = doc.headings.iter().filter(|h| h.level == 1).count();
        assert_eq!(titles, 1, "{name} has one title");
        let level2: Vec<&Heading> = doc.headings.iter().filter(|h| h.level == 2).collect();
        assert!(!level2.is_empty(), "{name} has sections");
        if level2.iter().any(|h| h.text == "Symptoms") {
            // One situation: the four sections, in order, at the top level.
            let texts: Vec<&str> = level2.iter().map(|h| h.text.as_str()).collect();
            assert_eq!(texts, SECTIONS, "{name}: its sections");
        } else {
            // One situation per `##`, each with the four sections, in order.
            let mut current: Option<(&str, Vec<&str>)> = None;
            let mut situations = Vec::new();
            for h in &doc.headings {
                match h.level {
                    2 => {
                        if let Some(done) = current.take() {
                            situations.push(done);
                        }
                        current = Some((h.text.as_str(), Vec::new()));
                    }
                    3 => {
                        if let Some((_, subs)) = &mut current {
                            subs.push(h.text.as_str());
                        }
                    }
                    _ => {}
                }
            }
            situations.extend(current);
            for (situation, subs) in situations {
                assert_eq!(subs, SECTIONS, "{name}: ## {situation}");
            }
        }
    }
}

#[test]
fn workloads_not_restartable_covers_every_case() {
    let docs = runbooks();
    let doc = &docs["workloads-not-restartable.md"];
    let sections: BTreeSet<&str> = doc
        .headings
        .iter()
        .filter(|h| h.level == 2)
        .map(|h| h.text.as_str())
        .collect();
    for wanted in [
        "Bare pods",
        "Jobs and CronJobs",
        "Paused Deployments",
        "StatefulSets held by a partition",
        "OnDelete StatefulSets with a pod not Ready",
        "Paused or unavailable Argo Rollouts",
        "Unknown or missing owners",
        "OnDelete workloads",
        "Custom proxy images",
        "Skipped workloads",
    ] {
        assert!(sections.contains(wanted), "## {wanted} in {sections:?}");
    }
    let recovery: BTreeSet<&str> = docs["recovery.md"]
        .headings
        .iter()
        .filter(|h| h.level == 2)
        .map(|h| h.text.as_str())
        .collect();
    for wanted in [
        "The control-plane gate failed",
        "A rollout failed or timed out",
        "An eviction blocked by a PodDisruptionBudget",
        "A revision without a control plane",
        "The Job failed",
        "Re-running",
    ] {
        assert!(recovery.contains(wanted), "## {wanted} in {recovery:?}");
    }
}

#[test]
fn links_between_runbooks_resolve() {
    let docs = runbooks();
    let mut checked = 0;
    for (name, doc) in &docs {
        for (target, line) in &doc.links {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            if let Err(problem) = resolve(&docs, name, target) {
                panic!("{}:{line}: {problem}", doc.path);
            }
            checked += 1;
        }
    }
    assert!(
        checked > 20,
        "the runbooks link to each other ({checked} links)"
    );
}

#[test]
fn the_index_lists_every_runbook() {
    let docs = runbooks();
    let linked: BTreeSet<&str> = docs["README.md"]
        .links
        .iter()
        .map(|(t, _)| t.split('#').next().unwrap_or_default())
        .collect();
    for name in docs.keys().filter(|n| n.as_str() != "README.md") {
        assert!(
            linked.contains(name.as_str()),
            "runbooks/README.md links to {name}"
        );
    }
}

/// `kubectl` verbs (and `rollout` subcommands) that only read.
const KUBECTL_READ: &[&str] = &[
    "get",
    "describe",
    "logs",
    "api-resources",
    "api-versions",
    "explain",
    "top",
    "events",
    "version",
    "cluster-info",
];
const KUBECTL_ROLLOUT_READ: &[&str] = &["status", "history"];
const TOOL_READ: &[&str] = &["plan", "report", "snapshot"];

/// The command lines of a block: comments and blank lines dropped, `\` continuations joined.
fn commands(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// The first word after the program that is not an option (or an option's value).
fn verb_of(words: &[&str]) -> Vec<String> {
    let with_value = [
        "-n",
        "--namespace",
        "--context",
        "--kubeconfig",
        "-l",
        "--selector",
    ];
    let mut out = Vec::new();
    let mut i = 1;
    while i < words.len() && out.len() < 2 {
        let w = words[i];
        if with_value.contains(&w) {
            i += 2;
            continue;
        }
        if w.starts_with('-') {
            i += 1;
            continue;
        }
        out.push(w.to_string());
        i += 1;
    }
    out
}

#[test]
fn read_only_blocks_only_read() {
    let docs = runbooks();
    let mut read_only = 0;
    for (name, doc) in &docs {
        for block in &doc.blocks {
            let info: Vec<&str> = block.info.split_whitespace().collect();
            match info.as_slice() {
                [] | ["sh"] => continue,
                ["sh", "read-only"] | ["sh", "read-only", "live"] => {}
                other => panic!(
                    "{}:{}: unknown code block kind {other:?} (use sh, sh read-only or sh read-only live)",
                    doc.path, block.line
                ),
            }
            for command in commands(&block.body) {
                read_only += 1;
                let at = format!("{name}:{} `{command}`", block.line);
                assert!(
                    !command.contains('<'),
                    "{at}: read-only blocks are run as written: no <placeholders>"
                );
                // Only a redirection to a local file; no pipes or chains to other programs.
                for bad in ["|", "&&", ";", "$("] {
                    assert!(!command.contains(bad), "{at}: one plain command per line");
                }
                let words: Vec<&str> = command.split_whitespace().collect();
                let verbs = verb_of(&words);
                match words[0] {
                    "kubectl" => {
                        let verb = verbs.first().map(String::as_str).unwrap_or_default();
                        let read = KUBECTL_READ.contains(&verb)
                            || (verb == "rollout"
                                && verbs
                                    .get(1)
                                    .is_some_and(|s| KUBECTL_ROLLOUT_READ.contains(&s.as_str())));
                        assert!(read, "{at}: kubectl {verb} is not a read");
                    }
                    "istio-proxy-reset" => {
                        let verb = verbs.first().map(String::as_str).unwrap_or_default();
                        assert!(
                            TOOL_READ.contains(&verb),
                            "{at}: istio-proxy-reset {verb} is not a read"
                        );
                    }
                    other => panic!("{at}: {other} is neither kubectl nor istio-proxy-reset"),
                }
            }
        }
    }
    assert!(
        read_only > 40,
        "the runbooks carry read-only commands ({read_only})"
    );
}

#[test]
fn runbook_commands_name_the_tool_and_options_that_exist() {
    use clap::CommandFactory;
    let cli = istio_proxy_reset::cli::Cli::command();
    let known_long: BTreeSet<String> = {
        fn walk(cmd: &clap::Command, out: &mut BTreeSet<String>) {
            for arg in cmd.get_arguments() {
                if let Some(long) = arg.get_long() {
                    out.insert(format!("--{long}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut out: BTreeSet<String> = ["--help", "--version"].map(String::from).into();
        walk(&cli, &mut out);
        out
    };
    let subcommands: BTreeSet<String> = cli
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    // Subcommands DESIGN §3 promises that this build may not have yet.
    let designed: BTreeSet<&str> = ["plan", "run", "report", "snapshot"].into();
    let docs = runbooks();
    for (name, doc) in &docs {
        for block in doc.blocks.iter().filter(|b| b.info.starts_with("sh")) {
            for command in commands(&block.body) {
                let words: Vec<&str> = command.split_whitespace().collect();
                if words[0] != "istio-proxy-reset" {
                    continue;
                }
                let at = format!("{name}:{} `{command}`", block.line);
                let verb = words.get(1).copied().unwrap_or_default();
                assert!(
                    subcommands.contains(verb) || designed.contains(verb),
                    "{at}: no subcommand {verb}"
                );
                for word in words.iter().filter(|w| w.starts_with("--")) {
                    let option = word.split('=').next().unwrap_or_default();
                    assert!(
                        known_long.contains(option),
                        "{at}: no option {option} (known: {known_long:?})"
                    );
                }
            }
        }
    }
}

#[test]
fn runbooks_name_the_jobs_real_objects() {
    // Names the runbooks tell operators to type must be the ones job/ creates.
    let job = std::fs::read_to_string(root().join("job/base/job.yaml")).expect("job/base/job.yaml");
    let report_role = std::fs::read_to_string(root().join("job/base/role-report.yaml"))
        .expect("role-report.yaml");
    assert!(job.contains("name: istio-proxy-reset\n"));
    assert!(job.contains("value: kyma-system/istio-proxy-reset-report"));
    assert!(report_role.contains("istio-proxy-reset-report"));
    let docs = runbooks();
    let upgrade = &docs["upgrade-job.md"];
    let bodies: String = upgrade.blocks.iter().map(|b| b.body.as_str()).collect();
    for needed in [
        "kubectl -n kyma-system logs job/istio-proxy-reset -f",
        "kubectl -n kyma-system get configmap istio-proxy-reset-report -o jsonpath='{.data.report\\.json}' > report.json",
        "istio-proxy-reset report report.json",
    ] {
        assert!(bodies.contains(needed), "upgrade-job.md shows `{needed}`");
    }
    let text = std::fs::read_to_string(root().join("runbooks/upgrade-job.md")).unwrap();
    for code in ["| 0 |", "| 1 |", "| 2 |", "| 3 |"] {
        assert!(
            text.contains(code),
            "upgrade-job.md explains exit code {code}"
        );
    }
}

fn kubectl_available() -> bool {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: kubectl is not on the PATH; the runbooks' commands were not run");
    }
    found
}

/// A command line run with `sh -c` in `dir`, against the cluster of `kubeconfig`, with the
/// tool's binary first on the PATH.
async fn shell(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    command: &str,
) -> std::process::Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_istio-proxy-reset"));
    let path = std::env::join_paths(
        std::iter::once(bin.parent().expect("the binary's directory").to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ),
    )
    .expect("a PATH");
    let mut cmd = tokio::process::Command::new("sh");
    for (name, _) in std::env::vars() {
        if name.starts_with("ISTIO_PROXY_RESET_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("-c")
        .arg(command)
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path)
        .kill_on_drop(true);
    tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("`{command}` did not finish within a minute"))
        .expect("run sh")
}

/// The commands of every `sh read-only` block, run as written after the upgrade Job (`job/`
/// applied, `run` done) on a cluster that has every action kind: each succeeds, and together
/// they send the API nothing but reads. On both backends.
async fn read_only_blocks_work_against_a_cluster(backend: Backend) {
    if !kubectl_available() {
        return;
    }
    let mut scenario = Scenario::every_action_upgraded(backend).await;
    scenario.apply_file("runbook-objects.yaml");
    let dir = scenario.dir.path().to_path_buf();
    let kubeconfig = scenario.kubeconfig.clone();
    // `plan --snapshot examples/…` is run from the repository root in the runbooks.
    std::fs::create_dir(dir.join("examples")).unwrap();
    std::fs::copy(
        root().join("examples/kyma-upgrade.json"),
        dir.join("examples/kyma-upgrade.json"),
    )
    .unwrap();

    // The state the runbooks describe: the upgrade Job applied and its run done.
    let job = root().join("job");
    for command in [
        format!("kubectl kustomize {} | kubectl apply -f -", job.display()),
        "istio-proxy-reset run --report-configmap kyma-system/istio-proxy-reset-report --format json > run.json"
            .to_string(),
    ] {
        let out = shell(&dir, &kubeconfig, &command).await;
        assert!(
            out.status.success(),
            "{backend:?}: `{command}` failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    scenario.forget_requests();

    let docs = runbooks();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (name, doc) in &docs {
        for block in doc.blocks.iter().filter(|b| b.info == "sh read-only") {
            for command in commands(&block.body) {
                ran += 1;
                let out = shell(&dir, &kubeconfig, &command).await;
                if !out.status.success() {
                    failures.push(format!(
                        "{name}:{} `{command}` ({}):\n{}",
                        block.line,
                        out.status,
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{backend:?}: {} of {ran} read-only commands failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 40, "{ran} commands ran");
    let writes: Vec<String> = scenario
        .requests_as("kube-sim:admin")
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.line())
        .collect();
    assert!(
        writes.is_empty(),
        "{backend:?}: read-only commands wrote: {writes:#?}"
    );
}

on_both_backends!(read_only_blocks_work_against_a_cluster);
