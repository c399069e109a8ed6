//! Where an import's results go: a trace directory (journal + body store) or memory (tests).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::error::CaptureError;
use crate::trace::{
    looks_like_text, BodyContent, BodySink, BodyStore, Entry, JournalWriter, BODIES_DIR, HEAD_LIMIT,
};

/// Receives the entries and bodies an import produces.
pub trait TraceOutput {
    /// Starts a body; bytes arrive as the capture is read, so nothing is held in memory.
    fn begin_body(&mut self) -> Result<Box<dyn BodyWrite>, CaptureError>;
    /// One finished entry, in the order connections and queries end.
    fn append(&mut self, entry: &Entry) -> Result<(), CaptureError>;
}

/// One body being written.
pub trait BodyWrite {
    fn write(&mut self, data: &[u8]) -> Result<(), CaptureError>;
    /// Stores the body and says how the entry refers to it.
    fn finish(self: Box<Self>, content_type: Option<&str>) -> Result<BodyContent, CaptureError>;
}

/// A trace directory: `journal.jsonl` plus `bodies/`, as the recorder writes them.
pub struct DirOutput {
    journal: JournalWriter,
    store: BodyStore,
    bodies: PathBuf,
}

impl DirOutput {
    pub fn open(dir: &Path) -> Result<Self, CaptureError> {
        let journal = JournalWriter::open(dir)?;
        let store = BodyStore::new(dir)?;
        Ok(DirOutput {
            journal,
            store,
            bodies: dir.join(BODIES_DIR),
        })
    }

    pub fn into_journal(self) -> JournalWriter {
        self.journal
    }
}

impl TraceOutput for DirOutput {
    fn begin_body(&mut self) -> Result<Box<dyn BodyWrite>, CaptureError> {
        let sink = self
            .store
            .begin()
            .map_err(|e| CaptureError::io(&self.bodies, e))?;
        Ok(Box::new(DirBody {
            sink,
            store: self.store.clone(),
            bodies: self.bodies.clone(),
        }))
    }

    fn append(&mut self, entry: &Entry) -> Result<(), CaptureError> {
        Ok(self.journal.append(entry)?)
    }
}

struct DirBody {
    sink: BodySink,
    store: BodyStore,
    bodies: PathBuf,
}

impl BodyWrite for DirBody {
    fn write(&mut self, data: &[u8]) -> Result<(), CaptureError> {
        self.sink
            .write(data)
            .map_err(|e| CaptureError::io(&self.bodies, e))
    }

    fn finish(self: Box<Self>, content_type: Option<&str>) -> Result<BodyContent, CaptureError> {
        let this = *self;
        let stored = this
            .sink
            .finish()
            .map_err(|e| CaptureError::io(&this.bodies, e))?;
        Ok(stored.content(&this.store, content_type, None, false)?)
    }
}

/// Keeps everything in memory: for tests and for callers that only want the entries.
#[derive(Debug, Default)]
pub struct MemoryOutput {
    pub entries: Vec<Entry>,
    /// Bodies by sha256, shared with the bodies still being written.
    pub bodies: Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
}

impl TraceOutput for MemoryOutput {
    fn begin_body(&mut self) -> Result<Box<dyn BodyWrite>, CaptureError> {
        Ok(Box::new(MemoryBody {
            data: Vec::new(),
            pool: self.bodies.clone(),
        }))
    }

    fn append(&mut self, entry: &Entry) -> Result<(), CaptureError> {
        self.entries.push(entry.clone());
        Ok(())
    }
}

struct MemoryBody {
    data: Vec<u8>,
    pool: Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
}

impl BodyWrite for MemoryBody {
    fn write(&mut self, data: &[u8]) -> Result<(), CaptureError> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn finish(self: Box<Self>, content_type: Option<&str>) -> Result<BodyContent, CaptureError> {
        let MemoryBody { data, pool } = *self;
        let sha = hex::encode(Sha256::digest(&data));
        let text = (data.len() <= HEAD_LIMIT && looks_like_text(&data, content_type))
            .then(|| String::from_utf8(data.clone()).ok())
            .flatten();
        pool.borrow_mut().insert(sha.clone(), data);
        Ok(BodyContent {
            file: Some(format!("{BODIES_DIR}/{sha}")),
            sha256: Some(sha),
            text,
            base64: None,
            decoded_size: None,
        })
    }
}
