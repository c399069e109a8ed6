//! Streaming HAR reader: walks `log.entries` one entry at a time (a serde visitor over
//! the file), so loading holds one entry's JSON, never the whole document. Large
//! embedded bodies are moved to a [`SpillStore`] as each entry is read.
//!
//! The shape checks of the old whole-file reader are kept: a file that is not a HAR
//! says what was found instead (`an array`, `` `log` without `entries` ``, ...), and a
//! journal renamed to `.har` (its first value is an entry, not `{"log": ...}`) is
//! recognised so the caller can read it as a journal.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::error::TraceError;
use super::har::Entry;
use super::journal::{Unrecorded, UNRECORDED_KEY};
use super::reader::{LoadProblem, LoadedTrace};
use super::spill::Spiller;

/// What the file turned out to be.
pub(crate) enum HarOutcome {
    /// Entries were loaded into the trace; `raw` counts them before any was skipped.
    Har { raw: usize },
    /// The first value is a journal entry: read the file as a journal.
    Journal,
}

/// Reads `path` as HAR into `trace` (whose `root` and `source` are set).
pub(crate) fn load_har_into(
    path: &Path,
    trace: &mut LoadedTrace,
) -> Result<HarOutcome, TraceError> {
    let file = File::open(path).map_err(|e| TraceError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    // Some Windows tools write a UTF-8 byte order mark.
    if reader
        .fill_buf()
        .map_err(|e| TraceError::io(path, e))?
        .starts_with(b"\xEF\xBB\xBF")
    {
        reader.consume(3);
    }
    let json_error = |e: serde_json::Error| {
        if e.is_io() {
            return TraceError::io(path, std::io::Error::other(e));
        }
        TraceError::Json {
            path: path.to_path_buf(),
            line: Some(e.line()),
            source: e,
        }
    };
    let mut de = serde_json::Deserializer::from_reader(reader);
    let mut load = Load {
        path,
        trace,
        raw: 0,
        version: None,
        spiller: Spiller::default(),
    };
    let top = Probe(TopShape(&mut load))
        .deserialize(&mut de)
        .map_err(json_error)?;
    let found = match top {
        Ok(Top::Har) => None,
        // More values follow: one entry per line, a journal. A lone entry object is not.
        Ok(Top::Journal) if de.end().is_err() => return Ok(HarOutcome::Journal),
        Ok(Top::Journal) => Some(NO_LOG.to_string()),
        Ok(Top::NotHar(found)) => Some(found),
        Err(shape) => Some(shape),
    };
    if let Some(found) = found {
        return Err(TraceError::NotHar {
            path: path.to_path_buf(),
            found,
        });
    }
    de.end().map_err(json_error)?;
    // The version is about the whole file: report it before entry problems.
    let version_problem = match load.version.take() {
        Some(Value::String(v)) if v == "1.1" || v == "1.2" => None,
        Some(v) => Some(format!(
            "HAR version {v} (expected \"1.1\" or \"1.2\"); loaded anyway"
        )),
        None => Some("no log.version (expected \"1.2\"); loaded anyway".to_string()),
    };
    let raw = load.raw;
    if let Some(message) = version_problem {
        trace
            .problems
            .insert(0, LoadProblem::new(path, None, message));
    }
    Ok(HarOutcome::Har { raw })
}

struct Load<'a> {
    path: &'a Path,
    trace: &'a mut LoadedTrace,
    raw: usize,
    version: Option<Value>,
    spiller: Spiller,
}

impl Load<'_> {
    fn entry(&mut self, value: Value) {
        let i = self.raw;
        self.raw += 1;
        let what = format!("log.entries[{i}]");
        match serde_json::from_value::<Entry>(value) {
            Ok(mut entry) => {
                self.spiller.entry(self.trace, &mut entry);
                super::reader::push_checked(self.trace, entry, self.path, None, &what);
            }
            Err(e) => self.trace.problems.push(LoadProblem::new(
                self.path,
                None,
                format!("{what}: not a valid HAR entry, skipped: {e}"),
            )),
        }
    }
}

const NO_LOG: &str = "a JSON object without `log`";

enum Top {
    Har,
    Journal,
    NotHar(String),
}

/// A visitor for one expected shape (an object or an array); any other value is
/// consumed and described, so the caller can say what it found.
trait Shape<'de>: Sized {
    type Out;

    fn map<A: MapAccess<'de>>(self, map: A) -> Result<Result<Self::Out, String>, A::Error> {
        describe_map(map).map(Err)
    }

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Result<Self::Out, String>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array".to_string()))
    }
}

fn describe_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<String, A::Error> {
    let mut keys = Vec::new();
    while let Some(key) = map.next_key::<String>()? {
        map.next_value::<IgnoredAny>()?;
        if keys.len() < 5 {
            keys.push(key);
        }
    }
    Ok(format!("an object with keys {keys:?}"))
}

struct Probe<S>(S);

impl<'de, S: Shape<'de>> Visitor<'de> for Probe<S> {
    type Value = Result<S::Out, String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.seq(seq)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean".to_string()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number".to_string()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number".to_string()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number".to_string()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Err("a string".to_string()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err("null".to_string()))
    }
}

impl<'de, S: Shape<'de>> DeserializeSeed<'de> for Probe<S> {
    type Value = Result<S::Out, String>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// The document: `{"log": {...}}`, or a journal entry (`startedDateTime`, `request`).
struct TopShape<'b, 'a>(&'b mut Load<'a>);

impl<'de> Shape<'de> for TopShape<'_, '_> {
    type Out = Top;

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<Top, String>, A::Error> {
        let mut log: Option<Result<Top, String>> = None;
        let (mut started, mut request) = (false, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "log" if log.is_none() => log = Some(map.next_value_seed(Probe(LogShape(self.0)))?),
                _ => {
                    started |= key == "startedDateTime";
                    request |= key == "request";
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(match log {
            Some(Ok(top)) => top,
            Some(Err(found)) => Top::NotHar(format!("`log` is {found}")),
            None if started && request => Top::Journal,
            None => Top::NotHar(NO_LOG.to_string()),
        }))
    }
}

/// `log`: `version`, `entries`, our `_unrecorded`; everything else is skipped.
struct LogShape<'b, 'a>(&'b mut Load<'a>);

impl<'de> Shape<'de> for LogShape<'_, '_> {
    type Out = Top;

    fn map<A: MapAccess<'de>>(self, mut map: A) -> Result<Result<Top, String>, A::Error> {
        let load = self.0;
        let mut entries: Option<Result<(), String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => load.version = Some(map.next_value::<Value>()?),
                "entries" if entries.is_none() => {
                    entries = Some(map.next_value_seed(Probe(EntriesShape(&mut *load)))?)
                }
                UNRECORDED_KEY => {
                    let v = map.next_value::<Value>()?;
                    match serde_json::from_value::<Unrecorded>(v) {
                        Ok(gap) => load.trace.unrecorded.add(&gap),
                        Err(e) => load.trace.problems.push(LoadProblem::new(
                            load.path,
                            None,
                            format!("invalid log.{UNRECORDED_KEY}, ignored: {e}"),
                        )),
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(match entries {
            Some(Ok(())) => Top::Har,
            Some(Err(found)) => Top::NotHar(format!("`log.entries` is {found}")),
            None => Top::NotHar("`log` without `entries`".to_string()),
        }))
    }
}

/// `log.entries`: each element is read as one JSON value and turned into an entry.
struct EntriesShape<'b, 'a>(&'b mut Load<'a>);

impl<'de> Shape<'de> for EntriesShape<'_, '_> {
    type Out = ();

    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Result<(), String>, A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            self.0.entry(value);
        }
        Ok(Ok(()))
    }
}
