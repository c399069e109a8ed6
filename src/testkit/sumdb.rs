//! A checksum database for tests: a signed tree note, `/lookup` records and hash tiles for
//! a fixed set of synthetic modules, in the formats of golang.org/x/mod/sumdb, so the real
//! go command verifies what it is served (signature, inclusion in the tree, hashes).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};

use super::modules::SyntheticModule;

/// Tiles have height 8 (256 hashes), as on sum.golang.org.
const TILE_HEIGHT: u32 = 8;
const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// The key's algorithm byte for Ed25519 in golang.org/x/mod/sumdb/note.
const ALG_ED25519: u8 = 1;

/// One database: its name (a host, e.g. `sum.golang.org`), its signing key and its records.
#[derive(Debug)]
pub struct SumDb {
    name: String,
    key: Ed25519KeyPair,
    /// `(module@version, record text)` in record-id order.
    records: Vec<(String, Vec<u8>)>,
    leaves: Vec<[u8; 32]>,
    signed_note: Vec<u8>,
}

impl SumDb {
    /// A database named `name` holding the go.sum lines of `modules` (at most 256, one
    /// level-0 tile: plenty for tests).
    pub fn new(name: &str, modules: &[SyntheticModule]) -> Result<SumDb, String> {
        Self::with_records(
            name,
            modules
                .iter()
                .map(|m| (format!("{}@{}", m.path, m.version), m.go_sum_lines()))
                .collect(),
        )
    }

    /// A database of `(module@version, go.sum lines)` records, which need not match what
    /// the proxy serves: a test can make the database disagree with a zip on purpose.
    pub fn with_records(name: &str, mut records: Vec<(String, String)>) -> Result<SumDb, String> {
        if records.len() > TILE_WIDTH {
            return Err(format!(
                "at most {TILE_WIDTH} records, got {}",
                records.len()
            ));
        }
        records.sort();
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| e.to_string())?;
        let records: Vec<(String, Vec<u8>)> = records
            .into_iter()
            .map(|(k, text)| (k, text.into_bytes()))
            .collect();
        let leaves: Vec<[u8; 32]> = records.iter().map(|(_, t)| record_hash(t)).collect();
        let mut db = SumDb {
            name: name.to_string(),
            key,
            records,
            leaves,
            signed_note: Vec::new(),
        };
        db.signed_note = db.sign(&db.tree_note());
        Ok(db)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key, the value for GOSUMDB: `name+hash+base64(alg || public key)`.
    pub fn verifier_key(&self) -> String {
        let key = self.key_bytes();
        format!("{}+{:08x}+{}", self.name, self.key_hash(), B64.encode(key))
    }

    /// `/lookup/<module>@<version>` body: record id, go.sum lines, blank line, signed note.
    /// `module_at_version` is unescaped (`example.com/M@v1.0.0`).
    pub fn lookup(&self, module_at_version: &str) -> Option<Vec<u8>> {
        let id = self
            .records
            .iter()
            .position(|(k, _)| k == module_at_version)?;
        let mut body = format!("{id}\n").into_bytes();
        body.extend_from_slice(&self.records[id].1);
        body.push(b'\n');
        body.extend_from_slice(&self.signed_note);
        Some(body)
    }

    /// The latest signed tree note (`/latest`).
    pub fn latest(&self) -> &[u8] {
        &self.signed_note
    }

    /// A tile, from the path after `/tile/` (`8/0/000.p/3`). Only level-0 hash tiles and
    /// data tiles exist in a database of at most 256 records.
    pub fn tile(&self, path: &str) -> Option<Vec<u8>> {
        let parts: Vec<&str> = path.split('/').collect();
        let (height, level, index, width) = match parts.as_slice() {
            [h, l, n] => (*h, *l, *n, None),
            [h, l, n, w] => (
                *h,
                *l,
                n.strip_suffix(".p")?,
                Some(w.parse::<usize>().ok()?),
            ),
            _ => return None,
        };
        if height != TILE_HEIGHT.to_string() || index != "000" {
            return None;
        }
        let n = self.records.len();
        // A full tile is served only when full, a partial one only at the tree's size.
        let want = width.unwrap_or(TILE_WIDTH);
        if want == 0 || want > n || (width.is_some() && want != n) {
            return None;
        }
        match level {
            "0" => Some(self.leaves[..want].concat()),
            // Data tiles: the record texts, one after another, each ending with a blank line.
            "data" => Some(
                self.records[..want]
                    .iter()
                    .flat_map(|(_, t)| t.iter().copied().chain([b'\n']))
                    .collect(),
            ),
            _ => None,
        }
    }

    fn tree_note(&self) -> String {
        format!(
            "go.sum database tree\n{}\n{}\n",
            self.records.len(),
            B64.encode(tree_hash(&self.leaves))
        )
    }

    fn key_bytes(&self) -> Vec<u8> {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.public_key().as_ref());
        key
    }

    fn key_hash(&self) -> u32 {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update(b"\n");
        h.update(self.key_bytes());
        let sum = h.finalize();
        u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
    }

    /// A note: the text, a blank line, then `— <name> base64(key hash || signature)`.
    fn sign(&self, text: &str) -> Vec<u8> {
        let sig = self.key.sign(text.as_bytes());
        let mut blob = self.key_hash().to_be_bytes().to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, B64.encode(blob)).into_bytes()
    }
}

/// RFC 6962 leaf hash, as tlog.RecordHash.
fn record_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// RFC 6962 Merkle tree hash over leaf hashes (the left subtree is the largest power of
/// two smaller than the whole).
fn tree_hash(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let split = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&tree_hash(&leaves[..split]), &tree_hash(&leaves[split..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u8) -> [u8; 32] {
        record_hash(&[i])
    }

    #[test]
    fn tree_hash_splits_at_the_largest_power_of_two_below_the_size() {
        let l: Vec<[u8; 32]> = (0..7).map(leaf).collect();
        assert_eq!(tree_hash(&l[..1]), l[0]);
        assert_eq!(tree_hash(&l[..2]), node_hash(&l[0], &l[1]));
        let three = node_hash(&node_hash(&l[0], &l[1]), &l[2]);
        assert_eq!(tree_hash(&l[..3]), three);
        let four = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &l[3]));
        assert_eq!(tree_hash(&l[..4]), four);
        let five = node_hash(&four, &l[4]);
        assert_eq!(tree_hash(&l[..5]), five);
        let seven = node_hash(&four, &node_hash(&node_hash(&l[4], &l[5]), &l[6]));
        assert_eq!(tree_hash(&l[..7]), seven);
    }

    #[test]
    fn lookup_note_and_tiles_have_go_formats() {
        let mods = vec![
            SyntheticModule::simple("a.example/one", "v1.0.0", 10),
            SyntheticModule::simple("a.example/two", "v1.2.0", 10),
        ];
        let db = SumDb::new("sum.golang.org", &mods).unwrap();
        let body = String::from_utf8(db.lookup("a.example/two@v1.2.0").unwrap()).unwrap();
        let mut lines = body.lines();
        assert_eq!(lines.next(), Some("1"));
        assert!(lines
            .next()
            .unwrap()
            .starts_with("a.example/two v1.2.0 h1:"));
        assert!(lines
            .next()
            .unwrap()
            .starts_with("a.example/two v1.2.0/go.mod h1:"));
        assert_eq!(lines.next(), Some(""));
        assert_eq!(lines.next(), Some("go.sum database tree"));
        assert_eq!(lines.next(), Some("2"));
        assert_eq!(lines.next().unwrap().len(), 44);
        assert_eq!(lines.next(), Some(""));
        assert!(lines
            .next()
            .unwrap()
            .starts_with("\u{2014} sum.golang.org "));
        assert!(db.lookup("a.example/three@v1.0.0").is_none());

        assert_eq!(db.tile("8/0/000.p/2").unwrap().len(), 64);
        assert!(
            db.tile("8/0/000.p/1").is_none(),
            "only the tree's own width"
        );
        assert!(db.tile("8/0/000").is_none(), "not full yet");
        assert!(db.tile("8/1/000.p/2").is_none());
        let data = db.tile("8/data/000.p/2").unwrap();
        assert!(data.ends_with(b"\n\n"));

        let key = db.verifier_key();
        // The key's base64 may itself hold '+': only the first two separate fields.
        let parts: Vec<&str> = key.splitn(3, '+').collect();
        assert_eq!(parts[0], "sum.golang.org");
        assert_eq!(parts[1].len(), 8);
        assert_eq!(B64.decode(parts[2]).unwrap().len(), 33);
    }

    #[test]
    fn the_note_signature_verifies_with_the_published_key() {
        let db = SumDb::new("sum.example", &[]).unwrap();
        let note = String::from_utf8(db.latest().to_vec()).unwrap();
        let (text, sig_line) = note.split_once("\n\n").unwrap();
        let text = format!("{text}\n");
        let blob = B64
            .decode(sig_line.trim_end().rsplit(' ').next().unwrap())
            .unwrap();
        assert_eq!(&blob[..4], &db.key_hash().to_be_bytes());
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            db.key.public_key().as_ref(),
        );
        public.verify(text.as_bytes(), &blob[4..]).unwrap();
    }
}
