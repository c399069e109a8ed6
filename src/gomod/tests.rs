//! Table tests for request classification, escaping, GOPROXY parsing and glob matching.

use super::*;

struct Case {
    method: &'static str,
    url: &'static str,
    kind: GoKind,
    module: Option<&'static str>,
    version: Option<&'static str>,
    base: Option<&'static str>,
    file: Option<ProxyFile>,
    /// Substring the problem must contain; `None` means no problem.
    problem: Option<&'static str>,
}

const fn get(url: &'static str, kind: GoKind) -> Case {
    Case {
        method: "GET",
        url,
        kind,
        module: None,
        version: None,
        base: None,
        file: None,
        problem: None,
    }
}

impl Case {
    const fn m(mut self, m: &'static str) -> Self {
        self.module = Some(m);
        self
    }
    const fn v(mut self, v: &'static str) -> Self {
        self.version = Some(v);
        self
    }
    const fn b(mut self, b: &'static str) -> Self {
        self.base = Some(b);
        self
    }
    const fn f(mut self, f: ProxyFile) -> Self {
        self.file = Some(f);
        self
    }
    const fn p(mut self, p: &'static str) -> Self {
        self.problem = Some(p);
        self
    }
    const fn post(mut self) -> Self {
        self.method = "POST";
        self
    }
}

fn check(cases: &[Case], known: &[String]) {
    for c in cases {
        let got = classify(c.method, c.url, known);
        let ctx = format!("{} {} -> {got:?}", c.method, c.url);
        assert_eq!(got.kind, c.kind, "kind: {ctx}");
        assert_eq!(got.module.as_deref(), c.module, "module: {ctx}");
        assert_eq!(got.version.as_deref(), c.version, "version: {ctx}");
        assert_eq!(got.base.as_deref(), c.base, "base: {ctx}");
        assert_eq!(got.file, c.file, "file: {ctx}");
        match (c.problem, got.problem.as_deref()) {
            (None, None) => {}
            (Some(want), Some(p)) => {
                assert!(p.contains(want), "problem {p:?} lacks {want:?}: {ctx}")
            }
            (want, p) => panic!("problem: want {want:?}, got {p:?}: {ctx}"),
        }
    }
}

const PG: &str = "https://proxy.golang.org";

#[test]
fn goproxy_protocol_inferred_base() {
    use GoKind::*;
    use ProxyFile as F;
    let cases = [
        get("https://proxy.golang.org/golang.org/x/mod/@v/list", List)
            .m("golang.org/x/mod")
            .b(PG)
            .f(F::List),
        get(
            "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.3.2.info",
            Info,
        )
        .m("github.com/BurntSushi/toml")
        .v("v1.3.2")
        .b(PG)
        .f(F::Info),
        get(
            "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.3.2.mod",
            Mod,
        )
        .m("github.com/BurntSushi/toml")
        .v("v1.3.2")
        .b(PG)
        .f(F::Mod),
        get(
            "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.3.2.zip",
            Zip,
        )
        .m("github.com/BurntSushi/toml")
        .v("v1.3.2")
        .b(PG)
        .f(F::Zip),
        get("https://proxy.golang.org/github.com/x/y/@latest", Latest)
            .m("github.com/x/y")
            .b(PG)
            .f(F::Latest),
        // +incompatible, raw and percent-encoded.
        get(
            "https://proxy.golang.org/github.com/docker/docker/@v/v20.10.7+incompatible.info",
            Info,
        )
        .m("github.com/docker/docker")
        .v("v20.10.7+incompatible")
        .b(PG)
        .f(F::Info),
        get(
            "https://proxy.golang.org/github.com/docker/docker/@v/v20.10.7%2Bincompatible.mod",
            Mod,
        )
        .m("github.com/docker/docker")
        .v("v20.10.7+incompatible")
        .b(PG)
        .f(F::Mod),
        // Pseudo-version.
        get(
            "https://proxy.golang.org/example.com/m/@v/v0.0.0-20230101120000-abcdef123456.zip",
            Zip,
        )
        .m("example.com/m")
        .v("v0.0.0-20230101120000-abcdef123456")
        .b(PG)
        .f(F::Zip),
        // Major-version suffixes.
        get(
            "https://proxy.golang.org/github.com/go-chi/chi/v5/@v/v5.0.10.mod",
            Mod,
        )
        .m("github.com/go-chi/chi/v5")
        .v("v5.0.10")
        .b(PG)
        .f(F::Mod),
        get(
            "https://proxy.golang.org/gopkg.in/yaml.v3/@v/v3.0.1.zip",
            Zip,
        )
        .m("gopkg.in/yaml.v3")
        .v("v3.0.1")
        .b(PG)
        .f(F::Zip),
        // Escaped upper case in a version (pre-release tags may carry capitals).
        get(
            "https://proxy.golang.org/example.com/m/@v/v1.0.0-!r!c1.info",
            Info,
        )
        .m("example.com/m")
        .v("v1.0.0-RC1")
        .b(PG)
        .f(F::Info),
        // Path prefix in front of the module (Artifactory style).
        get(
            "https://corp.example/artifactory/api/go/remote/github.com/!azure/x/@v/list",
            List,
        )
        .m("github.com/Azure/x")
        .b("https://corp.example/artifactory/api/go/remote")
        .f(F::List),
        // Port kept in the base.
        get("http://127.0.0.1:3000/example.com/m/@v/v1.0.0.info", Info)
            .m("example.com/m")
            .v("v1.0.0")
            .b("http://127.0.0.1:3000")
            .f(F::Info),
        // No domain-like element: the whole path is the module.
        get("http://localhost:8080/corp/tool/@v/list", List)
            .m("corp/tool")
            .b("http://localhost:8080")
            .f(F::List),
        // Host and scheme are case-insensitive; userinfo never reaches the base.
        get(
            "HTTPS://user:secret@Proxy.Example/example.com/m/@v/list",
            List,
        )
        .m("example.com/m")
        .b("https://proxy.example")
        .f(F::List),
    ];
    check(&cases, &[]);
}

#[test]
fn toolchain_requests() {
    use ProxyFile as F;
    let cases = [
        get(
            "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.22.1.linux-amd64.zip",
            GoKind::Toolchain,
        )
        .m("golang.org/toolchain")
        .v("v0.0.1-go1.22.1.linux-amd64")
        .b(PG)
        .f(F::Zip),
        get(
            "https://proxy.golang.org/golang.org/toolchain/@v/list",
            GoKind::Toolchain,
        )
        .m("golang.org/toolchain")
        .b(PG)
        .f(F::List),
        get(
            "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.22.1.linux-amd64.info",
            GoKind::Toolchain,
        )
        .m("golang.org/toolchain")
        .v("v0.0.1-go1.22.1.linux-amd64")
        .b(PG)
        .f(F::Info),
    ];
    check(&cases, &[]);
    let r = classify(
        "GET",
        "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go1.22.1.linux-amd64.mod",
        &[],
    );
    assert_eq!(r.effective_kind(), GoKind::Mod);
}

#[test]
fn known_bases_win_longest_first() {
    use ProxyFile as F;
    let known = vec![
        "https://corp.example/".to_string(),
        "https://corp.example/go/v1.2/".to_string(),
        "https://corp.example/go".to_string(),
        "https://proxy.golang.org".to_string(),
        "https://sum.golang.org".to_string(),
        "https://other.example/sumdb/sum.golang.org".to_string(),
    ];
    let cases = [
        // Inference alone would take "v1.2" as the start of the module path.
        get(
            "https://corp.example/go/v1.2/example.com/m/@v/list",
            GoKind::List,
        )
        .m("example.com/m")
        .b("https://corp.example/go/v1.2")
        .f(F::List),
        get(
            "https://corp.example/go/internal/tool/@v/v1.0.0.mod",
            GoKind::Mod,
        )
        .m("internal/tool")
        .v("v1.0.0")
        .b("https://corp.example/go")
        .f(F::Mod),
        // "/gox" is not under "/go": bases match whole path elements.
        get(
            "https://corp.example/gox/example.com/m/@v/list",
            GoKind::List,
        )
        .m("gox/example.com/m")
        .b("https://corp.example")
        .f(F::List),
        // The default https port is the same origin.
        get(
            "https://proxy.golang.org:443/example.com/m/@latest",
            GoKind::Latest,
        )
        .m("example.com/m")
        .b(PG)
        .f(F::Latest),
        get(
            "https://proxy.golang.org/sumdb/sum.golang.org/supported",
            GoKind::SumdbSupported,
        )
        .b("https://proxy.golang.org/sumdb/sum.golang.org"),
        get("https://sum.golang.org/latest", GoKind::SumdbLatest).b("https://sum.golang.org"),
        get(
            "https://other.example/sumdb/sum.golang.org/latest",
            GoKind::SumdbLatest,
        )
        .b("https://other.example/sumdb/sum.golang.org"),
        get(
            "https://other.example/sumdb/sum.golang.org/lookup/example.com/m@v1.0.0",
            GoKind::SumdbLookup,
        )
        .m("example.com/m")
        .v("v1.0.0")
        .b("https://other.example/sumdb/sum.golang.org"),
        // A known base does not turn unrelated paths into go requests.
        get("https://corp.example/go/", GoKind::Other),
    ];
    check(&cases, &known);
}

#[test]
fn sumdb_requests() {
    let sum = "https://sum.golang.org";
    let via = "https://proxy.example/sumdb/sum.golang.org";
    let cases = [
        get(
            "https://sum.golang.org/lookup/github.com/!burnt!sushi/toml@v1.3.2",
            GoKind::SumdbLookup,
        )
        .m("github.com/BurntSushi/toml")
        .v("v1.3.2")
        .b(sum),
        get(
            "https://sum.golang.org/lookup/github.com/docker/docker@v20.10.7+incompatible",
            GoKind::SumdbLookup,
        )
        .m("github.com/docker/docker")
        .v("v20.10.7+incompatible")
        .b(sum),
        get("https://sum.golang.org/latest", GoKind::SumdbLatest).b(sum),
        get(
            "https://sum.golang.org/tile/8/0/x001/x234/067",
            GoKind::SumdbTile,
        )
        .b(sum),
        get("https://sum.golang.org/tile/8/1/025.p/5", GoKind::SumdbTile).b(sum),
        get(
            "https://sum.golang.org/tile/8/data/x001/234",
            GoKind::SumdbTile,
        )
        .b(sum),
        get(
            "https://proxy.example/sumdb/sum.golang.org/supported",
            GoKind::SumdbSupported,
        )
        .b(via),
        get(
            "https://proxy.example/sumdb/sum.golang.org/latest",
            GoKind::SumdbLatest,
        )
        .b(via),
        get(
            "https://proxy.example/sumdb/sum.golang.org/lookup/golang.org/x/mod@v0.14.0",
            GoKind::SumdbLookup,
        )
        .m("golang.org/x/mod")
        .v("v0.14.0")
        .b(via),
        get(
            "https://proxy.example/sumdb/sum.golang.org/tile/8/2/000.p/1",
            GoKind::SumdbTile,
        )
        .b(via),
        // Proxy with a path prefix in front of /sumdb.
        get(
            "https://corp.example/goproxy/sumdb/sum.golang.org/tile/8/0/001",
            GoKind::SumdbTile,
        )
        .b("https://corp.example/goproxy/sumdb/sum.golang.org"),
        // A custom checksum database with a path prefix, found by its lookup shape.
        get(
            "https://sumdb.corp.example/db/lookup/corp.example/m@v1.0.0",
            GoKind::SumdbLookup,
        )
        .m("corp.example/m")
        .v("v1.0.0")
        .b("https://sumdb.corp.example/db"),
        // On a sumdb host, a malformed tile is still a tile, reported.
        get("https://sum.golang.org/tile/8/0/1234", GoKind::SumdbTile)
            .b(sum)
            .p("malformed tile path"),
        get(
            "https://sum.golang.org/lookup/example.com/m",
            GoKind::SumdbLookup,
        )
        .b(sum)
        .p("no '@version'"),
        get(
            "https://sum.golang.org/lookup/example.com/!M@v1.0.0",
            GoKind::SumdbLookup,
        )
        .v("v1.0.0")
        .b(sum)
        .p("invalid escaped module path"),
        // Elsewhere, short endpoints are not trusted.
        get("https://www.example.com/latest", GoKind::Other),
        get("https://www.example.com/supported", GoKind::Other),
        get("https://www.example.com/tile/8/0/1234", GoKind::Other),
        get("https://www.example.com/lookup/thing", GoKind::Other),
    ];
    check(&cases, &[]);
}

#[test]
fn tile_refs() {
    let table: &[(&str, Option<TileRef>)] = &[
        (
            "https://sum.golang.org/tile/8/0/x001/x234/067",
            Some(TileRef {
                height: 8,
                level: 0,
                index: 1_234_067,
                width: None,
                data: false,
            }),
        ),
        (
            "https://sum.golang.org/tile/8/0/x001/234",
            Some(TileRef {
                height: 8,
                level: 0,
                index: 1234,
                width: None,
                data: false,
            }),
        ),
        (
            "https://sum.golang.org/tile/8/1/025.p/5",
            Some(TileRef {
                height: 8,
                level: 1,
                index: 25,
                width: Some(5),
                data: false,
            }),
        ),
        (
            "https://sum.golang.org/tile/8/0/x001/234.p/255",
            Some(TileRef {
                height: 8,
                level: 0,
                index: 1234,
                width: Some(255),
                data: false,
            }),
        ),
        (
            "https://sum.golang.org/tile/8/data/x001/234",
            Some(TileRef {
                height: 8,
                level: 0,
                index: 1234,
                width: None,
                data: true,
            }),
        ),
        (
            "https://sum.golang.org/tile/8/data/000.p/3",
            Some(TileRef {
                height: 8,
                level: 0,
                index: 0,
                width: Some(3),
                data: true,
            }),
        ),
        // Not canonical: missing 'x', unpadded, width == 2^H, zero width, bad height.
        ("https://sum.golang.org/tile/8/0/001/234", None),
        ("https://sum.golang.org/tile/8/0/1", None),
        ("https://sum.golang.org/tile/8/0/000.p/256", None),
        ("https://sum.golang.org/tile/8/0/000.p/0", None),
        ("https://sum.golang.org/tile/0/0/000", None),
        ("https://sum.golang.org/tile/31/0/000", None),
        ("https://sum.golang.org/tile/8/-1/000", None),
        ("https://sum.golang.org/tile/8/0", None),
        ("https://sum.golang.org/tile/8/0/x000/001", None),
        // Overflowing index.
        (
            "https://sum.golang.org/tile/8/0/x999/x999/x999/x999/x999/x999/x999/999",
            None,
        ),
    ];
    for (url, want) in table {
        let got = classify("GET", url, &[]);
        assert_eq!(got.kind, GoKind::SumdbTile, "{url}");
        assert_eq!(got.tile, *want, "{url}");
        assert_eq!(
            got.problem.is_some(),
            want.is_none(),
            "{url}: {:?}",
            got.problem
        );
        if let Some(t) = want {
            let path = classify::tile_path_for_tests(t);
            assert!(url.ends_with(&path), "{url} vs {path}");
        }
    }
}

#[test]
fn go_get_and_git() {
    let cases = [
        get("https://golang.org/x/mod?go-get=1", GoKind::GoGet).m("golang.org/x/mod"),
        get("https://corp.example/team/lib/sub?go-get=1", GoKind::GoGet)
            .m("corp.example/team/lib/sub"),
        get("https://corp.example/?go-get=1", GoKind::GoGet).m("corp.example"),
        get("https://example.com/a/?x=y&go-get=1", GoKind::GoGet).m("example.com/a"),
        get("https://example.com/a?go-get=0", GoKind::Other),
        get(
            "https://github.com/BurntSushi/toml/info/refs?service=git-upload-pack",
            GoKind::Git,
        )
        .m("github.com/BurntSushi/toml"),
        get(
            "https://github.com/owner/repo.git/info/refs?service=git-upload-pack",
            GoKind::Git,
        )
        .m("github.com/owner/repo"),
        get(
            "https://git.corp.example/scm/team/repo.git/info/refs?service=git-receive-pack",
            GoKind::Git,
        )
        .m("git.corp.example/scm/team/repo"),
        get(
            "https://github.com/owner/repo.git/git-upload-pack",
            GoKind::Git,
        )
        .post()
        .m("github.com/owner/repo"),
        get(
            "https://github.com/owner/repo/git-receive-pack",
            GoKind::Git,
        )
        .post()
        .m("github.com/owner/repo"),
        // A GET to the pack endpoint or an unknown service is not git traffic go makes.
        get(
            "https://github.com/owner/repo.git/git-upload-pack",
            GoKind::Other,
        ),
        get(
            "https://github.com/owner/repo.git/info/refs?service=other",
            GoKind::Other,
        ),
        get("https://github.com/owner/repo.git/info/refs", GoKind::Other),
    ];
    check(&cases, &[]);
}

#[test]
fn invalid_escapes_are_reported_not_guessed() {
    use ProxyFile as F;
    let cases = [
        // '!' followed by upper case, by a digit, or at the end.
        get(
            "https://proxy.golang.org/github.com/!Azure/x/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("invalid escaped module path"),
        get(
            "https://proxy.golang.org/github.com/!1zure/x/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("not followed by a lower-case letter"),
        get(
            "https://proxy.golang.org/github.com/azure!/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("not followed by a lower-case letter"),
        // A raw capital letter.
        get(
            "https://proxy.golang.org/github.com/Azure/x/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("raw upper-case letter 'A'"),
        // Bad version escape: module still decoded.
        get(
            "https://proxy.golang.org/example.com/m/@v/v1.0.0-RC1.info",
            GoKind::Info,
        )
        .m("example.com/m")
        .b(PG)
        .f(F::Info)
        .p("invalid escaped version"),
        get(
            "https://proxy.golang.org/example.com/m/@v/.info",
            GoKind::Info,
        )
        .m("example.com/m")
        .b(PG)
        .f(F::Info)
        .p("empty string"),
        get(
            "https://proxy.golang.org/example.com/m/@v/v1/x.info",
            GoKind::Info,
        )
        .m("example.com/m")
        .b(PG)
        .f(F::Info)
        .p("'/'"),
        // Non-ASCII (percent-encoded UTF-8).
        get(
            "https://proxy.golang.org/example.com/m%C3%A9/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("non-ASCII"),
        // Unknown file under /@v/.
        get(
            "https://proxy.golang.org/example.com/m/@v/v1.0.0.ziphash",
            GoKind::Other,
        )
        .m("example.com/m")
        .b(PG)
        .p("unknown GOPROXY file"),
        get("https://proxy.golang.org/example.com/m/@v/", GoKind::Other)
            .m("example.com/m")
            .b(PG)
            .p("unknown GOPROXY file"),
        // Nothing before /@v/.
        get("https://proxy.golang.org/@v/list", GoKind::List)
            .b(PG)
            .f(F::List)
            .p("empty module path"),
        get("https://proxy.golang.org/@latest", GoKind::Latest)
            .b(PG)
            .f(F::Latest)
            .p("empty module path"),
        // Malformed percent-escape: kept literally and reported.
        get(
            "https://proxy.golang.org/example.com/m%zz/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("character '%'"),
        get(
            "https://proxy.golang.org/example.com/m/@v/list%",
            GoKind::Other,
        )
        .m("example.com/m")
        .b(PG)
        .p("malformed percent-escape"),
        get(
            "https://proxy.golang.org/example.com/%FF/@v/list",
            GoKind::List,
        )
        .b(PG)
        .f(F::List)
        .p("invalid UTF-8"),
    ];
    check(&cases, &[]);
}

#[test]
fn garbage_never_panics() {
    let inputs = [
        "",
        " ",
        "not a url",
        "://",
        "https://",
        "https:///path",
        "https://host",
        "https://host?",
        "https://host#frag",
        "https://host/%",
        "https://host/%%",
        "https://host/%e2%82",
        "https://host/@v/",
        "https://host//@v/list",
        "https://host/@v/@v/@v/list",
        "https://host/a/@v/.zip",
        "https://host/a/@v/!.zip",
        "https://host/sumdb",
        "https://host/sumdb/",
        "https://host/sumdb//tile/8/0/000",
        "https://host/tile/",
        "https://host/tile/8/data/",
        "https://host/tile/99999999999/0/000",
        "https://host/lookup/@",
        "https://host/lookup/!@!",
        "https://[::1]:8080/example.com/m/@v/list",
        "https://[::1/x",
        "https://héllo.example/ünï/@v/列表",
        "https://host/a?go-get=1&go-get",
        "https://host/info/refs?service",
        "ftp://host/x/@latest",
        "1https://x",
        "\u{0}://\u{0}",
    ];
    let known = vec![
        String::new(),
        "garbage".to_string(),
        "https://host/".to_string(),
    ];
    for input in inputs {
        for method in ["GET", "POST", "", "ÿ"] {
            let _ = classify(method, input, &[]);
            let _ = classify(method, input, &known);
        }
    }
    let r = classify("GET", "not a url", &[]);
    assert_eq!(r.kind, GoKind::Other);
    assert_eq!(r.problem.as_deref(), Some("not an absolute URL"));
    let r = classify("GET", "https://[::1]:8080/example.com/m/@v/list", &[]);
    assert_eq!(r.base.as_deref(), Some("https://[::1]:8080"));
    assert_eq!(r.module.as_deref(), Some("example.com/m"));
}

#[test]
fn escaping_round_trips() {
    let table = [
        (
            "github.com/Azure/azure-sdk-for-go",
            "github.com/!azure/azure-sdk-for-go",
        ),
        (
            "github.com/GoogleCloudPlatform/cloudsql-proxy",
            "github.com/!google!cloud!platform/cloudsql-proxy",
        ),
        ("github.com/BurntSushi/toml", "github.com/!burnt!sushi/toml"),
        ("golang.org/x/mod", "golang.org/x/mod"),
        ("gopkg.in/yaml.v3", "gopkg.in/yaml.v3"),
    ];
    for (plain, escaped) in table {
        assert_eq!(escape_path(plain).as_deref(), Ok(escaped));
        assert_eq!(unescape_path(escaped).as_deref(), Ok(plain));
    }
    assert_eq!(escape_version("v1.0.0-RC1").as_deref(), Ok("v1.0.0-!r!c1"));
    assert_eq!(
        unescape_version("v1.0.0-!r!c1").as_deref(),
        Ok("v1.0.0-RC1")
    );
    assert_eq!(
        escape_version("v2.0.0+incompatible").as_deref(),
        Ok("v2.0.0+incompatible")
    );
    assert_eq!(
        module_zip_root("example.com/m", "v1.0.0"),
        "example.com/m@v1.0.0/"
    );
}

#[test]
fn escaping_errors() {
    use EscapeError::*;
    type EscapeFn = fn(&str) -> Result<String, EscapeError>;
    let table: &[(&str, EscapeFn, EscapeError)] = &[
        ("", escape_path, Empty),
        ("a!b", escape_path, LiteralBang { at: 1 }),
        ("é", escape_path, NonAscii { at: 0, ch: 'é' }),
        ("v1/2", escape_version, SlashInVersion { at: 2 }),
        ("", unescape_path, Empty),
        ("github.com/!Azure", unescape_path, BangNotLower { at: 11 }),
        ("a!1", unescape_path, BangNotLower { at: 1 }),
        ("a!!b", unescape_path, BangNotLower { at: 1 }),
        ("a!", unescape_path, BangNotLower { at: 1 }),
        ("Azure", unescape_path, UpperCase { at: 0, ch: 'A' }),
        ("x/é", unescape_path, NonAscii { at: 2, ch: 'é' }),
        ("v1.0.0-RC", unescape_version, UpperCase { at: 7, ch: 'R' }),
        ("v1/0", unescape_version, SlashInVersion { at: 2 }),
        (
            "example.com/a b",
            escape_path,
            InvalidChar { at: 13, ch: ' ' },
        ),
        (
            "example.com/a%zz",
            unescape_path,
            InvalidChar { at: 13, ch: '%' },
        ),
        (
            "example.com/a:b",
            unescape_path,
            InvalidChar { at: 13, ch: ':' },
        ),
        ("v1.0.0*", unescape_version, InvalidChar { at: 6, ch: '*' }),
        ("v1.0.0*", escape_version, InvalidChar { at: 6, ch: '*' }),
    ];
    for (input, f, want) in table {
        assert_eq!(f(input).as_ref(), Err(want), "{input:?}");
    }
}

fn url(u: &str) -> ProxyTarget {
    ProxyTarget::Url(u.to_string())
}

#[test]
fn goproxy_lists() {
    use Fallback::*;
    use ProxyTarget::*;
    let e = |target, fallback| ProxyEntry { target, fallback };
    let table: Vec<(&str, Vec<ProxyEntry>)> = vec![
        (
            "",
            vec![
                e(url("https://proxy.golang.org"), OnNotFound),
                e(Direct, OnNotFound),
            ],
        ),
        (
            "https://a.example,https://b.example",
            vec![
                e(url("https://a.example"), OnNotFound),
                e(url("https://b.example"), OnNotFound),
            ],
        ),
        (
            "https://a.example|https://b.example",
            vec![
                e(url("https://a.example"), OnAnyError),
                e(url("https://b.example"), OnNotFound),
            ],
        ),
        // The separator after an entry decides; the last entry has none.
        (
            "https://a.example|https://b.example,direct",
            vec![
                e(url("https://a.example"), OnAnyError),
                e(url("https://b.example"), OnNotFound),
                e(Direct, OnNotFound),
            ],
        ),
        (
            "https://a.example,direct,https://b.example",
            vec![
                e(url("https://a.example"), OnNotFound),
                e(Direct, OnNotFound),
            ],
        ),
        (
            "https://a.example,direct|https://b.example",
            vec![
                e(url("https://a.example"), OnNotFound),
                e(Direct, OnAnyError),
            ],
        ),
        ("off", vec![e(Off, OnNotFound)]),
        ("off,https://a.example", vec![e(Off, OnNotFound)]),
        ("direct", vec![e(Direct, OnNotFound)]),
        // Whitespace and empty elements are skipped; a list of nothing stays empty.
        (
            " https://a.example/ , ,| https://b.example//prefix/ ",
            vec![
                e(url("https://a.example"), OnNotFound),
                e(url("https://b.example//prefix"), OnNotFound),
            ],
        ),
        ("  ", vec![]),
        (",", vec![]),
        ("|,|", vec![]),
        // Scheme-less hosts get https://; full URLs and file paths are kept.
        (
            "goproxy.io,corp.example:8443/go|http://127.0.0.1:3000/,file:///srv/mods/",
            vec![
                e(url("https://goproxy.io"), OnNotFound),
                e(url("https://corp.example:8443/go"), OnAnyError),
                e(url("http://127.0.0.1:3000"), OnNotFound),
                e(url("file:///srv/mods"), OnNotFound),
            ],
        ),
        ("/srv/mods", vec![e(url("/srv/mods"), OnNotFound)]),
    ];
    for (input, want) in table {
        assert_eq!(parse_goproxy(input), want, "{input:?}");
    }
}

#[test]
fn prefix_patterns() {
    let table: &[(&str, &str, bool)] = &[
        ("*.corp.example", "git.corp.example/team/repo", true),
        ("*.corp.example", "corp.example/team/repo", false),
        ("*.corp.example", "a.b.corp.example/x", true),
        ("github.com/org/*", "github.com/org/repo", true),
        ("github.com/org/*", "github.com/org/repo/sub/v2", true),
        ("github.com/org/*", "github.com/org", false),
        ("github.com/org/*", "github.com/other/repo", false),
        ("example.com/a", "example.com/a", true),
        ("example.com/a", "example.com/a/b", true),
        ("example.com/a", "example.com/ab", false),
        ("example.com/a/", "example.com/a/b", true),
        ("example.com", "example.com/a", true),
        ("example.com", "example.com.evil/a", false),
        ("", "example.com", false),
        (",,", "example.com", false),
        ("x.example,example.com/a", "example.com/a/c", true),
        ("x.example, example.com/a", "example.com/a/c", false),
        ("example.com/?", "example.com/a/b", true),
        ("example.com/?", "example.com/ab", false),
        ("example.com/[ab]*", "example.com/bcd", true),
        ("example.com/[^ab]*", "example.com/bcd", false),
        ("example.com/[a-c]", "example.com/d", false),
        ("example.com/[a-c]", "example.com/c/x", true),
        ("example.com/\\*", "example.com/*", true),
        ("example.com/\\*", "example.com/a", false),
        ("*", "anything/at/all", true),
        ("*/*", "one", false),
        ("*/*", "one/two/three", true),
        ("ex*le.com", "example.com/x", true),
        ("ex*le.com", "exle.com", true),
        ("Example.com", "example.com", false),
        // Malformed globs never match, even where a prefix would.
        ("example.com/[", "example.com/[", false),
        ("example.com/[]", "example.com/a", false),
        ("example.com/[a-", "example.com/a", false),
        ("example.com/\\", "example.com/a", false),
        ("exa[mple.com", "example.com", false),
        ("ex[a-]*", "exa", false),
        ("*[", "a", false),
        ("a*[", "a", false),
    ];
    for (globs, target, want) in table {
        assert_eq!(
            match_prefix_patterns(globs, target),
            *want,
            "{globs:?} vs {target:?}"
        );
    }
}

#[test]
fn kind_strings_and_serde() {
    let want = [
        "list",
        "info",
        "mod",
        "zip",
        "latest",
        "sumdb-supported",
        "sumdb-lookup",
        "sumdb-tile",
        "sumdb-latest",
        "go-get",
        "git",
        "toolchain",
        "other",
    ];
    for (k, w) in GoKind::ALL.iter().zip(want) {
        assert_eq!(k.as_str(), w);
        assert_eq!(serde_json::to_string(k).ok(), Some(format!("\"{w}\"")));
    }
    let r = classify(
        "GET",
        "https://proxy.golang.org/github.com/!burnt!sushi/toml/@v/v1.3.2.zip",
        &[],
    );
    let json = serde_json::to_value(&r).expect("serializes");
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "zip",
            "module": "github.com/BurntSushi/toml",
            "version": "v1.3.2",
            "base": "https://proxy.golang.org",
            "file": "zip",
        })
    );
    let back: GoRequest = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, r);
    // The trace contract only promises kind/module/version/base; the rest is optional.
    let minimal: GoRequest =
        serde_json::from_str(r#"{"kind":"sumdb-tile"}"#).expect("minimal _go parses");
    assert_eq!(minimal.kind, GoKind::SumdbTile);
}

#[test]
fn fragment_combinations_never_panic() {
    // Every ordered triple of awkward fragments, with and without known bases.
    let fragments = [
        "",
        "https://",
        "http://h",
        "h",
        "/",
        "//",
        "?",
        "#",
        "%",
        "%2",
        "%2F",
        "%ff",
        "!",
        "!A",
        "@v/",
        "/@v/",
        "@latest",
        "/@latest",
        "list",
        ".info",
        ".zip",
        "sumdb/",
        "lookup/",
        "tile/",
        "8/",
        "data/",
        "x001/",
        ".p/",
        "0",
        "go-get=1",
        "service=git-upload-pack",
        "info/refs",
        "git-upload-pack",
        "[",
        "]",
        ":",
        "\u{e9}",
        "\u{1F600}",
        " ",
    ];
    let known = vec!["https://h".to_string(), "http://h/sumdb/x".to_string()];
    for a in fragments {
        for b in fragments {
            for c in fragments {
                let url = format!("{a}{b}{c}");
                let _ = classify("GET", &url, &[]);
                let _ = classify("POST", &url, &known);
            }
        }
    }
}
