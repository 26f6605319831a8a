//! Container image references and the proxy version carried in their tag (DESIGN §2.3).
//!
//! A reference is `[registry[:port]/]path/name[:tag][@algorithm:digest]`. Nothing is normalised
//! (no implied `docker.io`, no implied `latest`), so a parsed reference prints back to exactly the
//! text it came from: the report shows operators what the cluster really says.

use std::fmt;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// `registry[:port]`, present when the first component looks like a host (it has a `.`, a
    /// `:` or an upper-case letter, or is `localhost`: Docker's rule).
    pub registry: Option<String>,
    /// The repository path below the registry, `path/name`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {reference:?}: {reason}")]
pub struct ImageRefError {
    pub reference: String,
    pub reason: &'static str,
}

const MAX_REFERENCE_LEN: usize = 4096;
const MAX_TAG_LEN: usize = 128;

impl ImageRef {
    pub fn parse(reference: &str) -> Result<ImageRef, ImageRefError> {
        let fail = |reason| ImageRefError {
            reference: reference.chars().take(200).collect(),
            reason,
        };
        if reference.is_empty() {
            return Err(fail("empty"));
        }
        if reference.len() > MAX_REFERENCE_LEN {
            return Err(fail("longer than 4096 bytes"));
        }
        if reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(fail("contains white space or control characters"));
        }

        let (name_and_tag, digest) = match reference.split_once('@') {
            Some((rest, digest)) => {
                validate_digest(digest).map_err(fail)?;
                (rest, Some(digest.to_string()))
            }
            None => (reference, None),
        };

        // A tag is whatever follows the last ':' after the last '/': a ':' before that belongs
        // to the registry's port.
        let last_slash = name_and_tag.rfind('/');
        let (name, tag) = match name_and_tag.rfind(':') {
            Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
                let tag = &name_and_tag[colon + 1..];
                validate_tag(tag).map_err(fail)?;
                (&name_and_tag[..colon], Some(tag.to_string()))
            }
            _ => (name_and_tag, None),
        };

        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if is_registry(first) => {
                validate_registry(first).map_err(fail)?;
                (Some(first.to_string()), rest)
            }
            _ => (None, name),
        };
        validate_repository(repository).map_err(fail)?;

        Ok(ImageRef {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The last path component: `proxyv2` for `docker.io/istio/proxyv2:1.24.1`.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The proxy version in the tag, when the tag carries one.
    pub fn version(&self) -> Option<ProxyVersion> {
        self.tag.as_deref().and_then(ProxyVersion::from_tag)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(registry) = &self.registry {
            write!(f, "{registry}/")?;
        }
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn validate_digest(digest: &str) -> Result<(), &'static str> {
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or("digest must be algorithm:hex")?;
    if algorithm.is_empty()
        || !algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
    {
        return Err("digest algorithm must be lower-case letters and digits");
    }
    if hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("digest must be at least 32 hexadecimal characters");
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let mut bytes = tag.bytes();
    match bytes.next() {
        None => return Err("empty tag"),
        Some(first) if !(first.is_ascii_alphanumeric() || first == b'_') => {
            return Err("a tag must start with a letter, digit or '_'");
        }
        Some(_) => {}
    }
    if tag.len() > MAX_TAG_LEN {
        return Err("tag longer than 128 characters");
    }
    if !bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        return Err("a tag may hold only letters, digits, '_', '.' and '-'");
    }
    Ok(())
}

/// Docker's rule (distribution/reference): the first path component is a registry when it is
/// `localhost`, or has a `.` or a `:` (a domain, a port, an IPv6 address), or an upper-case
/// letter (a repository never has one).
fn is_registry(first: &str) -> bool {
    first == "localhost"
        || first.contains(['.', ':'])
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// `host[:port]`: a domain of dot-separated labels (letters, digits, inner `-`), or an IPv6
/// address in brackets (`[fd00::1]`); the port a number.
fn validate_registry(registry: &str) -> Result<(), &'static str> {
    let port = match registry.strip_prefix('[') {
        Some(address) => validate_ipv6(address)?,
        None => {
            let (host, port) = match registry.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (registry, None),
            };
            let label_ok = |label: &str| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            };
            if !host.split('.').all(label_ok) {
                return Err(
                    "a registry host is dot-separated labels of letters, digits and inner '-'",
                );
            }
            port
        }
    };
    if let Some(port) = port
        && (port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("registry port must be a number");
    }
    Ok(())
}

/// `fd00::1]` or `fd00::1]:5000` (after the `[`); the port, if any.
fn validate_ipv6(address: &str) -> Result<Option<&str>, &'static str> {
    let (inside, after) = address
        .split_once(']')
        .ok_or("an IPv6 registry address needs its closing ']'")?;
    if inside.is_empty() || !inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
        return Err("an IPv6 registry address may hold only hexadecimal digits and ':'");
    }
    match after {
        "" => Ok(None),
        _ => after
            .strip_prefix(':')
            .map(Some)
            .ok_or("an IPv6 registry address may be followed only by :port"),
    }
}

fn validate_repository(repository: &str) -> Result<(), &'static str> {
    if repository.is_empty() {
        return Err("empty repository name");
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err("empty path component");
        }
        if !component
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(
                "path components may hold only lower-case letters, digits, '.', '_' and '-'",
            );
        }
        let first = component.as_bytes()[0];
        let last = component.as_bytes()[component.len() - 1];
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return Err("path components must start and end with a letter or digit");
        }
    }
    Ok(())
}

/// Image flavours Istio publishes: suffixes of the tag, not part of the version.
pub const FLAVOURS: [&str; 3] = ["distroless", "debug", "fips"];

/// The version of an Istio proxy, read from an image tag such as `1.24.1-distroless`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyVersion {
    pub version: semver::Version,
    /// The flavour suffixes that were stripped, in tag order.
    pub flavours: Vec<&'static str>,
}

impl ProxyVersion {
    /// `v?MAJOR.MINOR.PATCH[-pre-release][-flavour…]`; `None` when the tag names no version
    /// (`latest`, `master`, `1.24`).
    pub fn from_tag(tag: &str) -> Option<ProxyVersion> {
        let mut rest = tag.strip_prefix('v').unwrap_or(tag);
        let mut flavours = Vec::new();
        'strip: loop {
            for flavour in FLAVOURS {
                if let Some(stripped) = rest.strip_suffix(flavour).and_then(|r| r.strip_suffix('-'))
                {
                    flavours.insert(0, flavour);
                    rest = stripped;
                    continue 'strip;
                }
            }
            break;
        }
        let version = semver::Version::parse(rest).ok()?;
        Some(ProxyVersion { version, flavours })
    }

    /// Versions are equal when major, minor, patch and pre-release agree; flavours never matter.
    pub fn same_version(&self, other: &semver::Version) -> bool {
        self.version.major == other.major
            && self.version.minor == other.minor
            && self.version.patch == other.patch
            && self.version.pre == other.pre
    }
}

/// Parses a version as an operator writes it (`1.24.1`, `v1.24.1`, `1.24.1-distroless`).
pub fn parse_version(text: &str) -> Option<semver::Version> {
    ProxyVersion::from_tag(text.trim()).map(|v| v.version)
}

/// What the control plane expects a proxy to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub version: Option<semver::Version>,
    pub image: Option<ImageRef>,
}

/// The outcome of comparing one proxy image with what the control plane expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    Current,
    /// The proxy differs; the text says how, for the report.
    Drift(String),
}

/// DESIGN §2.3: same version → current whatever the registry or flavour; otherwise drift.
/// Without a version on either side, the whole references are compared.
pub fn compare(proxy: &ImageRef, expected: &Expected) -> Comparison {
    let expected_version = expected.version.clone().or_else(|| {
        expected
            .image
            .as_ref()
            .and_then(|i| i.version())
            .map(|v| v.version)
    });
    match (proxy.version(), expected_version) {
        (Some(actual), Some(wanted)) => {
            if actual.same_version(&wanted) {
                Comparison::Current
            } else if actual.version < wanted {
                Comparison::Drift(format!("proxy {} is older than {wanted}", actual.version))
            } else {
                Comparison::Drift(format!("proxy {} is newer than {wanted}", actual.version))
            }
        }
        _ => match &expected.image {
            Some(image) if image == proxy => Comparison::Current,
            Some(image) => Comparison::Drift(format!(
                "proxy image {proxy} has no version and differs from {image}"
            )),
            None => Comparison::Drift(format!(
                "proxy image {proxy} has no version to compare with the expected one"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_part_of_a_reference() {
        // text, registry, repository, tag, digest
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            ("proxyv2", None, "proxyv2", None, None),
            (
                "istio/proxyv2:1.24.1",
                None,
                "istio/proxyv2",
                Some("1.24.1"),
                None,
            ),
            (
                "docker.io/istio/proxyv2:1.24.1-distroless",
                Some("docker.io"),
                "istio/proxyv2",
                Some("1.24.1-distroless"),
                None,
            ),
            (
                "registry.local:5000/mirror/istio/proxyv2:1.24.1",
                Some("registry.local:5000"),
                "mirror/istio/proxyv2",
                Some("1.24.1"),
                None,
            ),
            (
                "localhost/proxyv2",
                Some("localhost"),
                "proxyv2",
                None,
                None,
            ),
            (
                "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Some("europe-docker.pkg.dev"),
                "kyma-project/prod/external/istio/proxyv2",
                None,
                Some("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            ),
            (
                "[fd00::1]/istio/proxyv2:1.24.1",
                Some("[fd00::1]"),
                "istio/proxyv2",
                Some("1.24.1"),
                None,
            ),
            (
                "[fd00:1::2]:5000/istio/proxyv2",
                Some("[fd00:1::2]:5000"),
                "istio/proxyv2",
                None,
                None,
            ),
            (
                "MirrorHost/istio/proxyv2:1.24.1",
                Some("MirrorHost"),
                "istio/proxyv2",
                Some("1.24.1"),
                None,
            ),
            (
                "gcr.io/istio-release/proxyv2:1.23.2@sha256:0123456789abcdef0123456789abcdef",
                Some("gcr.io"),
                "istio-release/proxyv2",
                Some("1.23.2"),
                Some("sha256:0123456789abcdef0123456789abcdef"),
            ),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let image = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(image.registry.as_deref(), *registry, "{text}");
            assert_eq!(image.repository, *repository, "{text}");
            assert_eq!(image.tag.as_deref(), *tag, "{text}");
            assert_eq!(image.digest.as_deref(), *digest, "{text}");
            assert_eq!(image.to_string(), *text);
        }
        assert_eq!(ImageRef::parse("a/b/proxyv2:1").unwrap().name(), "proxyv2");
    }

    #[test]
    fn rejects_odd_references_with_a_reason() {
        for text in [
            "",
            " ",
            "istio/proxyv2:",
            "istio/proxyv2:-x",
            "Istio/ProxyV2:1.0.0",
            "istio//proxyv2",
            "istio/proxyv2@sha256:xyz",
            "istio/proxyv2@sha256",
            "registry:port/istio/proxyv2",
            "istio/proxy v2:1.0.0",
            "/proxyv2",
            "proxyv2/",
            "[fd00::1/istio/proxyv2",
            "[fd00::zz]/istio/proxyv2",
            "[fd00::1]x/istio/proxyv2",
            "[]/istio/proxyv2",
            "-bad.io/istio/proxyv2",
            "bad..io/istio/proxyv2",
            "Mirror_Host/istio/proxyv2",
        ] {
            let error = ImageRef::parse(text).expect_err(text);
            assert!(!error.reason.is_empty());
        }
    }

    #[test]
    fn reads_versions_and_flavours_from_tags() {
        let cases: &[(&str, Option<&str>, &[&str])] = &[
            ("1.24.1", Some("1.24.1"), &[]),
            ("v1.24.1", Some("1.24.1"), &[]),
            ("1.24.1-distroless", Some("1.24.1"), &["distroless"]),
            ("1.24.1-debug", Some("1.24.1"), &["debug"]),
            ("1.24.1-fips", Some("1.24.1"), &["fips"]),
            (
                "1.24.1-fips-distroless",
                Some("1.24.1"),
                &["fips", "distroless"],
            ),
            ("1.25.0-beta.1", Some("1.25.0-beta.1"), &[]),
            (
                "1.25.0-beta.1-distroless",
                Some("1.25.0-beta.1"),
                &["distroless"],
            ),
            ("1.24.1-asm.2", Some("1.24.1-asm.2"), &[]),
            ("latest", None, &[]),
            ("1.24", None, &[]),
            ("distroless", None, &[]),
            ("1.24.1-", None, &[]),
        ];
        for (tag, version, flavours) in cases {
            let parsed = ProxyVersion::from_tag(tag);
            assert_eq!(
                parsed.as_ref().map(|v| v.version.to_string()),
                version.map(str::to_string),
                "{tag}"
            );
            if let Some(parsed) = parsed {
                assert_eq!(parsed.flavours, *flavours, "{tag}");
            }
        }
    }

    fn expected(version: &str, image: Option<&str>) -> Expected {
        Expected {
            version: parse_version(version),
            image: image.map(|i| ImageRef::parse(i).unwrap()),
        }
    }

    #[test]
    fn compares_as_the_design_says() {
        let wanted = expected("1.24.1", Some("docker.io/istio/proxyv2:1.24.1-distroless"));
        let cases: &[(&str, bool)] = &[
            // same version, other flavour and registry: a mirror is current
            ("docker.io/istio/proxyv2:1.24.1", true),
            ("mirror.corp:5000/istio/proxyv2:1.24.1-distroless", true),
            (
                "europe-docker.pkg.dev/kyma-project/prod/external/istio/proxyv2:1.24.1-fips",
                true,
            ),
            ("docker.io/istio/proxyv2:v1.24.1", true),
            // older and newer both drift
            ("docker.io/istio/proxyv2:1.23.2-distroless", false),
            ("docker.io/istio/proxyv2:1.25.0", false),
            ("docker.io/istio/proxyv2:1.24.1-beta.1", false),
            // no version: whole reference
            ("docker.io/istio/proxyv2:latest", false),
        ];
        for (proxy, current) in cases {
            let outcome = compare(&ImageRef::parse(proxy).unwrap(), &wanted);
            assert_eq!(
                outcome == Comparison::Current,
                *current,
                "{proxy}: {outcome:?}"
            );
        }
        let newer = compare(&ImageRef::parse("istio/proxyv2:1.25.0").unwrap(), &wanted);
        assert!(matches!(newer, Comparison::Drift(ref why) if why.contains("newer")));
    }

    #[test]
    fn references_without_versions_compare_whole() {
        let latest = "docker.io/istio/proxyv2:latest";
        let by_digest = "docker.io/istio/proxyv2@sha256:0123456789abcdef0123456789abcdef";
        assert_eq!(
            compare(
                &ImageRef::parse(latest).unwrap(),
                &expected("x", Some(latest))
            ),
            Comparison::Current
        );
        assert_eq!(
            compare(
                &ImageRef::parse(by_digest).unwrap(),
                &expected("x", Some(by_digest))
            ),
            Comparison::Current
        );
        assert!(matches!(
            compare(
                &ImageRef::parse(by_digest).unwrap(),
                &expected("x", Some(latest))
            ),
            Comparison::Drift(_)
        ));
        // Only a version is expected and the proxy names none: it cannot be shown current.
        assert!(matches!(
            compare(&ImageRef::parse(latest).unwrap(), &expected("1.24.1", None)),
            Comparison::Drift(_)
        ));
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,80}") {
            let _ = ImageRef::parse(&text);
            let _ = ProxyVersion::from_tag(&text);
        }

        #[test]
        fn parsed_references_print_back_to_themselves(text in "[a-zA-Z0-9.:/@_\\[\\]-]{1,60}") {
            if let Ok(image) = ImageRef::parse(&text) {
                prop_assert_eq!(image.to_string(), text.clone());
                prop_assert_eq!(ImageRef::parse(&image.to_string()).unwrap(), image);
            }
        }

        #[test]
        fn generated_references_round_trip(
            registry in proptest::option::of(prop_oneof![
                "[a-z][a-z0-9-]{0,10}[a-z0-9]\\.[a-z]{2,5}(:[0-9]{1,5})?",
                "[A-Z][A-Za-z0-9]{0,10}(:[0-9]{1,5})?",
                "\\[[0-9a-f]{1,4}(:[0-9a-f]{0,4}){1,7}\\](:[0-9]{1,5})?",
                "localhost(:[0-9]{1,5})?",
            ]),
            path in "[a-z0-9]{1,8}(/[a-z0-9]([a-z0-9._-]{0,6}[a-z0-9])?){0,3}",
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
            digest in proptest::option::of("sha256:[0-9a-f]{64}"),
        ) {
            let mut text = String::new();
            if let Some(r) = &registry { text.push_str(r); text.push('/'); }
            text.push_str(&path);
            if let Some(t) = &tag { text.push(':'); text.push_str(t); }
            if let Some(d) = &digest { text.push('@'); text.push_str(d); }
            let image = ImageRef::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(image.registry, registry);
            prop_assert_eq!(image.tag, tag);
            prop_assert_eq!(image.digest, digest);
            prop_assert_eq!(image.repository, path);
        }

        #[test]
        fn versions_compare_like_semver(a in 0u64..5, b in 0u64..30, c in 0u64..10,
                                        x in 0u64..5, y in 0u64..30, z in 0u64..10,
                                        flavour in proptest::sample::select(vec!["", "-distroless", "-debug", "-fips"])) {
            let proxy = ImageRef::parse(&format!("istio/proxyv2:{a}.{b}.{c}{flavour}")).unwrap();
            let wanted = expected(&format!("{x}.{y}.{z}"), None);
            let same = (a, b, c) == (x, y, z);
            prop_assert_eq!(compare(&proxy, &wanted) == Comparison::Current, same);
        }
    }
}
