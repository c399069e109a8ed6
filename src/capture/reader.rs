//! Streaming pcap and pcapng reading: frames with absolute timestamps in bounded memory,
//! with truncation and corruption reported by byte offset instead of failing the import.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};

use super::error::CaptureError;

/// Start small; dumpcap's default snapshot length (256 KiB) fits after one doubling.
const INITIAL_BUFFER: usize = 256 * 1024;

/// No sane capture has a record this large; beyond it the length field is corrupt and
/// growing further would let a damaged file allocate without bound.
const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// pcapng files may declare many interfaces; each costs a few bytes, but a corrupt file
/// must not make the list grow without bound.
const MAX_INTERFACES: usize = 4096;

/// One captured frame as the link layer delivered it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'a> {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    pub linktype: i32,
    /// Captured bytes (at most the snapshot length).
    pub data: &'a [u8],
    /// Length on the wire; larger than `data.len()` when the snapshot length cut the frame.
    pub orig_len: u32,
}

/// What reading the file itself found (packet-level findings come later).
#[derive(Debug, Default)]
pub(crate) struct ReadSummary {
    pub frames: u64,
    pub warnings: Vec<String>,
}

/// Byte count and the last read error, shared with the reader the parser owns.
#[derive(Default)]
struct Tally {
    bytes: Cell<u64>,
    error: RefCell<Option<io::Error>>,
}

/// The input with the already-peeked magic put back in front. Every read fills the
/// buffer unless the input ends, because pcap-parser parses the file header from its
/// first read and a short read (a pipe) would look like a truncated header.
struct Source<R> {
    prefix: [u8; 4],
    prefix_len: usize,
    prefix_pos: usize,
    inner: R,
    tally: Rc<Tally>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = if self.prefix_pos < self.prefix_len {
                let rest = self
                    .prefix
                    .get(self.prefix_pos..self.prefix_len)
                    .unwrap_or_default();
                let n = rest.len().min(buf.len() - filled);
                buf[filled..filled + n].copy_from_slice(&rest[..n]);
                self.prefix_pos += n;
                n
            } else {
                match self.inner.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let copy = io::Error::new(e.kind(), e.to_string());
                        *self.tally.error.borrow_mut() = Some(e);
                        return Err(copy);
                    }
                }
            };
            filled += n;
            self.tally.bytes.set(self.tally.bytes.get() + n as u64);
        }
        Ok(filled)
    }
}

/// File formats by their first four bytes, in file order.
const LEGACY_MAGICS: [[u8; 4]; 6] = [
    [0xd4, 0xc3, 0xb2, 0xa1], // microseconds, little-endian
    [0xa1, 0xb2, 0xc3, 0xd4], // microseconds, big-endian
    [0x4d, 0x3c, 0xb2, 0xa1], // nanoseconds, little-endian
    [0xa1, 0xb2, 0x3c, 0x4d], // nanoseconds, big-endian
    [0x34, 0xcd, 0xb2, 0xa1], // Kuznetzov's modified pcap
    [0xa1, 0xb2, 0xcd, 0x34],
];
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Legacy,
    PcapNg,
}

/// Per-interface facts a pcapng packet needs.
#[derive(Debug, Clone, Copy)]
struct Interface {
    linktype: i32,
    units_per_second: u64,
    offset_seconds: i64,
}

#[derive(Default)]
struct State {
    /// Legacy pcap: link type and whether timestamps are in nanoseconds.
    legacy: Option<(i32, bool)>,
    interfaces: Vec<Interface>,
    /// Simple packet blocks carry no timestamp: they get the previous packet's.
    last_ts: i64,
    undeclared_interface: u64,
    bad_resolution: bool,
    too_many_interfaces: bool,
}

type FrameSink<'s> = dyn FnMut(Frame<'_>) -> Result<(), CaptureError> + 's;

/// Reads every frame of `input` (named `path` in messages) and hands it to `on_frame`.
///
/// A file cut short or damaged part-way is not an error: the frames before the damage
/// are delivered and a warning names the byte offset.
pub(crate) fn read_frames<R: Read>(
    path: &Path,
    mut input: R,
    on_frame: &mut FrameSink<'_>,
) -> Result<ReadSummary, CaptureError> {
    let mut summary = ReadSummary::default();
    let mut magic = [0u8; 4];
    let mut have = 0;
    while have < magic.len() {
        match input.read(&mut magic[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CaptureError::io(path, e)),
        }
    }
    let head = &magic[..have];
    if head.is_empty() {
        return Err(CaptureError::Empty {
            path: path.to_path_buf(),
        });
    }
    let format = if head == PCAPNG_MAGIC {
        Format::PcapNg
    } else if LEGACY_MAGICS.iter().any(|m| m == head) {
        Format::Legacy
    } else if have < 4
        && (PCAPNG_MAGIC.starts_with(head) || LEGACY_MAGICS.iter().any(|m| m.starts_with(head)))
    {
        summary.warnings.push(format!(
            "{}: capture cut at byte {have}: the file header is incomplete; no packets imported",
            path.display()
        ));
        return Ok(summary);
    } else {
        return Err(not_capture(path, head));
    };

    let tally = Rc::new(Tally::default());
    let source = Source {
        prefix: magic,
        prefix_len: have,
        prefix_pos: 0,
        inner: input,
        tally: tally.clone(),
    };
    let opened: Result<Box<dyn PcapReaderIterator + '_>, PcapError<&'static [u8]>> = match format {
        Format::PcapNg => PcapNGReader::new(INITIAL_BUFFER, source)
            .map(|r| Box::new(r) as Box<dyn PcapReaderIterator>),
        Format::Legacy => LegacyPcapReader::new(INITIAL_BUFFER, source)
            .map(|r| Box::new(r) as Box<dyn PcapReaderIterator>),
    };
    let mut reader = match opened {
        Ok(r) => r,
        Err(e) => {
            if let Some(err) = tally.error.borrow_mut().take() {
                return Err(CaptureError::io(path, err));
            }
            return match e {
                PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof => {
                    summary.warnings.push(format!(
                        "{}: capture cut at byte {}: the file header is incomplete; no packets imported",
                        path.display(),
                        tally.bytes.get()
                    ));
                    Ok(summary)
                }
                other => Err(CaptureError::BadHeader {
                    path: path.to_path_buf(),
                    offset: 0,
                    detail: describe(&other),
                }),
            };
        }
    };

    let mut state = State::default();
    let mut capacity = INITIAL_BUFFER;
    let mut idle_refills = 0u32;
    loop {
        match reader.next() {
            Ok((len, block)) => {
                idle_refills = 0;
                handle_block(block, &mut state, &mut summary, on_frame)?;
                reader.consume(len);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                let before = tally.bytes.get();
                if reader.refill().is_err() {
                    return Err(read_error(path, &tally));
                }
                // A refill that adds nothing twice in a row means the reader is not making
                // progress; stopping beats spinning on a misbehaving input.
                idle_refills = if tally.bytes.get() == before {
                    idle_refills + 1
                } else {
                    0
                };
                if idle_refills > 2 {
                    summary
                        .warnings
                        .push(cut_warning(path, reader.consumed(), &tally, &summary));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                summary
                    .warnings
                    .push(cut_warning(path, reader.consumed(), &tally, &summary));
                break;
            }
            Err(PcapError::BufferTooSmall) => {
                let offset = reader.consumed();
                if capacity >= MAX_BUFFER {
                    summary.warnings.push(format!(
                        "{}: the record at byte {offset} claims more than {} MiB (corrupt length field?); \
                         stopped there, imported the {} packets before it",
                        path.display(),
                        MAX_BUFFER / (1024 * 1024),
                        summary.frames
                    ));
                    break;
                }
                capacity = (capacity * 2).min(MAX_BUFFER);
                reader.grow(capacity);
                if reader.refill().is_err() {
                    return Err(read_error(path, &tally));
                }
            }
            Err(PcapError::ReadError) => return Err(read_error(path, &tally)),
            Err(other) => {
                let detail = describe(&other);
                summary.warnings.push(format!(
                    "{}: unreadable record at byte {} ({detail}); stopped there, imported the {} packets before it",
                    path.display(),
                    reader.consumed(),
                    summary.frames
                ));
                break;
            }
        }
    }
    if state.undeclared_interface > 0 {
        summary.warnings.push(format!(
            "{}: {} packets name an interface that no interface description block declared; skipped",
            path.display(),
            state.undeclared_interface
        ));
    }
    if state.bad_resolution {
        summary.warnings.push(format!(
            "{}: an interface declares an invalid timestamp resolution; microseconds assumed",
            path.display()
        ));
    }
    if state.too_many_interfaces {
        summary.warnings.push(format!(
            "{}: more than {MAX_INTERFACES} interfaces declared; packets of the others skipped",
            path.display()
        ));
    }
    Ok(summary)
}

fn handle_block(
    block: PcapBlockOwned<'_>,
    state: &mut State,
    summary: &mut ReadSummary,
    on_frame: &mut FrameSink<'_>,
) -> Result<(), CaptureError> {
    match block {
        PcapBlockOwned::LegacyHeader(h) => {
            state.legacy = Some((h.network.0, h.is_nanosecond_precision()));
        }
        PcapBlockOwned::Legacy(b) => {
            let (linktype, nanos) = state.legacy.unwrap_or((1, false));
            let frac = if nanos {
                i64::from(b.ts_usec)
            } else {
                i64::from(b.ts_usec) * 1_000
            };
            let ts = i64::from(b.ts_sec) * 1_000_000_000 + frac;
            state.last_ts = ts;
            summary.frames += 1;
            on_frame(Frame {
                ts,
                linktype,
                data: b.data,
                orig_len: b.origlen,
            })?;
        }
        PcapBlockOwned::NG(Block::SectionHeader(_)) => state.interfaces.clear(),
        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
            if state.interfaces.len() >= MAX_INTERFACES {
                state.too_many_interfaces = true;
                return Ok(());
            }
            let units = match idb.ts_resolution() {
                Some(u) if u > 0 => u,
                _ => {
                    state.bad_resolution = true;
                    1_000_000
                }
            };
            state.interfaces.push(Interface {
                linktype: idb.linktype.0,
                units_per_second: units,
                offset_seconds: idb.if_tsoffset,
            });
        }
        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
            let Some(iface) = usize::try_from(epb.if_id)
                .ok()
                .and_then(|i| state.interfaces.get(i))
                .copied()
            else {
                state.undeclared_interface += 1;
                return Ok(());
            };
            let ts = ng_timestamp(
                epb.ts_high,
                epb.ts_low,
                iface.units_per_second,
                iface.offset_seconds,
            );
            state.last_ts = ts;
            summary.frames += 1;
            on_frame(Frame {
                ts,
                linktype: iface.linktype,
                data: epb.packet_data(),
                orig_len: epb.orig_len(),
            })?;
        }
        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
            let Some(iface) = state.interfaces.first().copied() else {
                state.undeclared_interface += 1;
                return Ok(());
            };
            summary.frames += 1;
            on_frame(Frame {
                ts: state.last_ts,
                linktype: iface.linktype,
                data: spb.packet_data(),
                orig_len: spb.orig_len(),
            })?;
        }
        PcapBlockOwned::NG(_) => {}
    }
    Ok(())
}

/// A pcapng timestamp in nanoseconds; 128-bit arithmetic because a 64-bit count of
/// picoseconds times 10^9 does not fit in 64 bits, saturating for absurd offsets.
pub(crate) fn ng_timestamp(high: u32, low: u32, units_per_second: u64, offset_seconds: i64) -> i64 {
    let raw = (u128::from(high) << 32) | u128::from(low);
    let units = u128::from(units_per_second.max(1));
    let nanos = (raw / units) * 1_000_000_000 + (raw % units) * 1_000_000_000 / units;
    let total =
        i128::try_from(nanos).unwrap_or(i128::MAX) + i128::from(offset_seconds) * 1_000_000_000;
    i64::try_from(total.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or(i64::MAX)
}

fn cut_warning(path: &Path, offset: usize, tally: &Tally, summary: &ReadSummary) -> String {
    format!(
        "{}: capture cut at byte {}: the record starting at byte {offset} is incomplete; \
         imported the {} packets before it",
        path.display(),
        tally.bytes.get(),
        summary.frames
    )
}

fn read_error(path: &Path, tally: &Tally) -> CaptureError {
    let err = tally
        .error
        .borrow_mut()
        .take()
        .unwrap_or_else(|| io::Error::other("read error"));
    CaptureError::io(path, err)
}

fn not_capture(path: &Path, head: &[u8]) -> CaptureError {
    let text: String = head
        .iter()
        .map(|&b| b as char)
        .filter(|c| !c.is_ascii_control() || c.is_ascii_whitespace())
        .collect();
    let printable = head
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    CaptureError::NotCapture {
        path: path.to_path_buf(),
        magic: hex::encode(head),
        hint: if printable {
            format!(" (looks like text: {text:?})")
        } else {
            String::new()
        },
    }
}

/// A short description of a parser error; the owned variants carry the whole remaining
/// buffer, which does not belong in a message.
fn describe<I>(e: &PcapError<I>) -> String {
    match e {
        PcapError::Eof => "end of file".to_string(),
        PcapError::BufferTooSmall => "record larger than the read buffer".to_string(),
        PcapError::UnexpectedEof => "unexpected end of file".to_string(),
        PcapError::ReadError => "read error".to_string(),
        PcapError::Incomplete(n) => format!("incomplete, {n} more bytes needed"),
        PcapError::HeaderNotRecognized => "header not recognized".to_string(),
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("malformed block ({})", kind.description())
        }
    }
}
