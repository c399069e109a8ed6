//! Synthetic Go modules: deterministic files, module zips (stored), and the `h1:` hashes
//! go.sum needs, so fixtures and the demo serve content go really verifies.

/// One module version as a GOPROXY serves it.
#[derive(Debug, Clone)]
pub struct SyntheticModule {
    pub path: String,
    pub version: String,
    /// RFC 3339 commit time for `.info`.
    pub time: String,
    /// Files relative to the module root; must include `go.mod`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl SyntheticModule {
    /// A small module with a go.mod and one Go file (plus `extra_bytes` of padding data in
    /// `data.txt`, to make zips of a chosen size).
    pub fn simple(path: &str, version: &str, extra_bytes: usize) -> Self {
        let package = path
            .rsplit('/')
            .find(|seg| !is_major_suffix(seg))
            .unwrap_or("lib")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let package = if package.is_empty() || package.starts_with(|c: char| c.is_ascii_digit()) {
            "lib".to_string()
        } else {
            package
        };
        let mut files = vec![
            ("go.mod".to_string(), format!("module {path}\n\ngo 1.19\n").into_bytes()),
            (
                format!("{package}.go"),
                format!(
                    "// Package {package} is a synthetic module served by modscope.\npackage {package}\n\n// Version reports the module version.\nfunc Version() string {{ return \"{version}\" }}\n"
                )
                .into_bytes(),
            ),
        ];
        if extra_bytes > 0 {
            let pattern = format!("{path}@{version} ");
            let data: Vec<u8> = pattern.bytes().cycle().take(extra_bytes).collect();
            files.push(("data.txt".to_string(), data));
        }
        SyntheticModule {
            path: path.to_string(),
            version: version.to_string(),
            time: "2024-01-02T03:04:05Z".to_string(),
            files,
        }
    }

    /// A module whose `data.txt` holds `data_bytes` of pseudo-random bytes from `seed`:
    /// incompressible, so its zip is as large on the wire as a deflated real one of that
    /// size (the bench's WAN workload sizes modules by their zip).
    pub fn incompressible(path: &str, version: &str, data_bytes: usize, seed: u64) -> Self {
        let mut m = Self::simple(path, version, 0);
        let mut rng = SplitMix64(seed);
        let mut data = Vec::with_capacity(data_bytes + 8);
        while data.len() < data_bytes {
            data.extend_from_slice(&rng.next_u64().to_le_bytes());
        }
        data.truncate(data_bytes);
        m.files.push(("data.bin".to_string(), data));
        m
    }

    pub fn go_mod(&self) -> &[u8] {
        self.files
            .iter()
            .find(|(name, _)| name == "go.mod")
            .map(|(_, data)| data.as_slice())
            .unwrap_or(b"")
    }

    pub fn info_json(&self) -> String {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"{}\"}}\n",
            self.version, self.time
        )
    }

    fn zip_names(&self) -> Vec<(String, &[u8])> {
        let mut names: Vec<(String, &[u8])> = self
            .files
            .iter()
            .map(|(name, data)| {
                (
                    format!("{}@{}/{}", self.path, self.version, name),
                    data.as_slice(),
                )
            })
            .collect();
        names.sort_by(|a, b| a.0.cmp(&b.0));
        names
    }

    /// The module zip, entries stored uncompressed.
    pub fn zip(&self) -> Vec<u8> {
        write_stored_zip(&self.zip_names())
    }

    /// The module zip with deflated entries (what proxy.golang.org serves).
    pub fn zip_deflated(&self) -> Vec<u8> {
        write_zip(&self.zip_names(), true)
    }

    /// `h1:` hash of the zip contents (golang.org/x/mod/sumdb/dirhash.Hash1).
    pub fn zip_hash(&self) -> String {
        hash1(self.zip_names().iter().map(|(n, d)| (n.as_str(), *d)))
    }

    /// `h1:` hash of go.mod alone, as in the `/go.mod` line of go.sum.
    pub fn go_mod_hash(&self) -> String {
        hash1([("go.mod", self.go_mod())])
    }

    /// The two go.sum lines for this module version.
    pub fn go_sum_lines(&self) -> String {
        format!(
            "{p} {v} {z}\n{p} {v}/go.mod {m}\n",
            p = self.path,
            v = self.version,
            z = self.zip_hash(),
            m = self.go_mod_hash()
        )
    }
}

/// splitmix64: a deterministic, fast generator for test data and synthetic workloads,
/// so they need no RNG crate and repeat exactly from a seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1]: never 0, so `ln` of it is finite.
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

fn is_major_suffix(seg: &str) -> bool {
    seg.len() > 1 && seg.starts_with('v') && seg[1..].bytes().all(|b| b.is_ascii_digit())
}

/// go's `h1:` of in-memory files; the one implementation lives in `gomod::dirhash`.
fn hash1<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    // Synthetic names never hold a newline, the only thing Hash1 refuses.
    crate::gomod::dirhash::hash1_of_contents(files).unwrap_or_default()
}

/// A zip archive with every entry stored (method 0), enough for go's module zips.
pub fn write_stored_zip(entries: &[(String, &[u8])]) -> Vec<u8> {
    write_zip(entries, false)
}

/// A zip archive, entries stored or deflated (method 8, as proxy.golang.org serves them).
pub fn write_zip(entries: &[(String, &[u8])], deflate: bool) -> Vec<u8> {
    use std::io::Write;
    // 1980-01-01 00:00, the zip epoch, keeps the bytes deterministic.
    const DOS_TIME: u16 = 0;
    const DOS_DATE: u16 = (1 << 5) | 1;
    let method: u16 = if deflate { 8 } else { 0 };
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let size = data.len() as u32;
        let packed = if deflate {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(data);
            enc.finish().unwrap_or_default()
        } else {
            data.to_vec()
        };
        let name = name.as_bytes();
        // The fields shared by the local header and the central directory entry.
        let mut common = Vec::new();
        common.extend_from_slice(&20u16.to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes());
        common.extend_from_slice(&method.to_le_bytes());
        common.extend_from_slice(&DOS_TIME.to_le_bytes());
        common.extend_from_slice(&DOS_DATE.to_le_bytes());
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        common.extend_from_slice(&size.to_le_bytes());
        common.extend_from_slice(&(name.len() as u16).to_le_bytes());

        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&packed);

        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&common);
        central.extend_from_slice(&[0u8; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// The modules the demo and the default fixtures serve: an upper-case path (escaping), a
/// /v2 major version, an +incompatible-free pseudo-version, and a larger zip.
pub fn default_modules() -> Vec<SyntheticModule> {
    vec![
        SyntheticModule::simple("example.com/hello", "v1.0.0", 0),
        SyntheticModule::simple("example.com/hello", "v1.1.0", 0),
        SyntheticModule::simple("example.com/Greeting", "v1.2.0", 0),
        SyntheticModule::simple("example.com/hello/v2", "v2.0.1", 0),
        SyntheticModule::simple("example.com/util", "v0.0.0-20240102030405-abcdef123456", 0),
        SyntheticModule::simple("example.com/bigdata", "v1.0.0", 3 * 1024 * 1024),
    ]
}

/// go.mod and go.sum of an app requiring the newest version of each given module path.
pub fn app_requiring(modules: &[SyntheticModule]) -> (String, String) {
    let mut newest: Vec<&SyntheticModule> = Vec::new();
    for m in modules {
        match newest.iter_mut().find(|n| n.path == m.path) {
            Some(n) => {
                if m.version > n.version {
                    *n = m;
                }
            }
            None => newest.push(m),
        }
    }
    let mut go_mod = String::from("module example.com/app\n\ngo 1.19\n\nrequire (\n");
    let mut go_sum = String::new();
    for m in &newest {
        go_mod.push_str(&format!("\t{} {}\n", m.path, m.version));
        go_sum.push_str(&m.go_sum_lines());
    }
    go_mod.push_str(")\n");
    (go_mod, go_sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use sha2::{Digest, Sha256};

    #[test]
    fn hash1_matches_go() {
        // Value computed by golang.org/x/mod/sumdb/dirhash for go.mod "module example.com/m\n".
        let h = hash1([("go.mod", b"module example.com/m\n".as_slice())]);
        let inner = Sha256::digest(b"module example.com/m\n");
        let line = format!("{}  go.mod\n", hex::encode(inner));
        let want =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(line.as_bytes()));
        assert_eq!(h, format!("h1:{want}"));
    }

    #[test]
    fn zip_is_parsable_and_deterministic() {
        let m = SyntheticModule::simple("example.com/hello", "v1.0.0", 100);
        let a = m.zip();
        assert_eq!(a, m.zip());
        assert_eq!(&a[..4], b"PK\x03\x04");
        let eocd = &a[a.len() - 22..];
        assert_eq!(&eocd[..4], &0x0605_4b50u32.to_le_bytes());
        assert_eq!(u16::from_le_bytes([eocd[10], eocd[11]]), 3);
    }

    #[test]
    fn app_requires_newest_versions() {
        let (go_mod, go_sum) = app_requiring(&default_modules());
        assert!(go_mod.contains("example.com/hello v1.1.0"));
        assert!(!go_mod.contains("example.com/hello v1.0.0"));
        assert!(go_sum.contains("example.com/Greeting v1.2.0/go.mod h1:"));
    }
}
