//! Pure arithmetic the IO shell runs while streaming: bandwidth pacing and in-place
//! corruption of body chunks at planned absolute offsets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How long to wait before sending more so that the average rate since the start of
/// the transfer stays at `bytes_per_sec`.
///
/// `bytes_sent_total` counts everything sent so far, including the chunk about to go
/// out if the caller asks before writing it (pacing ahead) or the chunk just written
/// (pacing after); either way the average converges on the cap. A rate of 0 means
/// "no cap" (rules refuse 0, so the shell only sees it when a direction is unset).
pub fn bandwidth_delay(bytes_sent_total: u64, elapsed: Duration, bytes_per_sec: u64) -> Duration {
    if bytes_per_sec == 0 {
        return Duration::ZERO;
    }
    // Exact in integers: bytes * 1e9 / rate fits u128 for any u64 inputs.
    let due_nanos = u128::from(bytes_sent_total) * 1_000_000_000 / u128::from(bytes_per_sec);
    let due = match u64::try_from(due_nanos / 1_000_000_000) {
        Ok(secs) => Duration::new(secs, (due_nanos % 1_000_000_000) as u32),
        Err(_) => Duration::MAX,
    };
    due.saturating_sub(elapsed)
}

/// A chunk size that keeps pacing smooth: about 50 ms worth of bytes at the cap,
/// between 1 byte and 64 KiB. Larger chunks make the stream bursty; smaller ones
/// only cost syscalls.
pub fn bandwidth_chunk_size(bytes_per_sec: u64) -> usize {
    let chunk = (bytes_per_sec / 20).clamp(1, 64 * 1024);
    usize::try_from(chunk).unwrap_or(64 * 1024)
}

/// Where a body cut (truncate, mid-body reset or stall) lands in one streamed chunk
/// holding bytes `chunk_offset .. chunk_offset + chunk_len`: `Some(n)` means deliver
/// the first `n` bytes of this chunk, then cut; `None` means the cut lies further on.
/// Exactly one chunk claims a cut. A body that ends before `after_bytes` is never
/// cut: no chunk claims it, which is the intended outcome (the point was past the end).
pub fn cut_within(chunk_offset: u64, chunk_len: usize, after_bytes: u64) -> Option<usize> {
    let into = after_bytes.checked_sub(chunk_offset)?;
    // A cut exactly on a boundary belongs to the chunk before it (deliver it whole,
    // then cut), so exactly one chunk claims each cut; only a cut at 0 opens a body.
    if into == 0 && chunk_offset > 0 {
        return None;
    }
    match usize::try_from(into) {
        Ok(n) if n <= chunk_len => Some(n),
        _ => None,
    }
}

/// A run of body bytes to invert, in absolute offsets from the start of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteSpan {
    pub offset: u64,
    pub len: u64,
}

/// Which body bytes a corrupt fault inverts (XOR 0xFF, so each planned byte is
/// guaranteed to change). Spans are sorted and do not overlap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptPlan {
    pub spans: Vec<ByteSpan>,
}

impl CorruptPlan {
    /// Builds a plan from single offsets in any order, merging neighbours.
    pub fn from_offsets(mut offsets: Vec<u64>) -> CorruptPlan {
        offsets.sort_unstable();
        offsets.dedup();
        let mut spans: Vec<ByteSpan> = Vec::new();
        for off in offsets {
            match spans.last_mut() {
                Some(last) if last.offset.checked_add(last.len) == Some(off) => last.len += 1,
                _ => spans.push(ByteSpan {
                    offset: off,
                    len: 1,
                }),
            }
        }
        CorruptPlan { spans }
    }

    pub fn byte_count(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.len)
            .fold(0, u64::saturating_add)
    }
}

/// Inverts the planned bytes that fall inside `chunk`, which holds body bytes
/// `chunk_offset .. chunk_offset + chunk.len()`. Bodies stream in arbitrary chunks,
/// so each call handles only its own slice of every span.
pub fn corrupt_in_place(chunk: &mut [u8], chunk_offset: u64, plan: &CorruptPlan) {
    let chunk_end = chunk_offset.saturating_add(chunk.len() as u64);
    for span in &plan.spans {
        let start = span.offset.max(chunk_offset);
        let end = span.offset.saturating_add(span.len).min(chunk_end);
        if start >= end {
            continue;
        }
        // Both bounds lie within the chunk, so the differences fit in usize.
        let (lo, hi) = (
            (start - chunk_offset) as usize,
            (end - chunk_offset) as usize,
        );
        for b in &mut chunk[lo..hi] {
            *b ^= 0xFF;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mib_at_256_kib_per_sec_takes_four_seconds() {
        let d = bandwidth_delay(1024 * 1024, Duration::ZERO, 256 * 1024);
        assert_eq!(d, Duration::from_secs(4));
        let d = bandwidth_delay(1024 * 1024, Duration::from_millis(1500), 256 * 1024);
        assert_eq!(d, Duration::from_millis(2500));
        // Already behind schedule: send at once.
        let d = bandwidth_delay(1024, Duration::from_secs(10), 256 * 1024);
        assert_eq!(d, Duration::ZERO);
    }

    #[test]
    fn pacing_loop_converges_on_the_cap() {
        // Simulate the shell: send a chunk, then sleep for the computed delay.
        let rate = 256 * 1024;
        let chunk = bandwidth_chunk_size(rate) as u64;
        let mut sent = 0u64;
        let mut clock = Duration::ZERO;
        while sent < 1024 * 1024 {
            sent += chunk.min(1024 * 1024 - sent);
            clock += bandwidth_delay(sent, clock, rate);
        }
        let secs = clock.as_secs_f64();
        assert!((secs - 4.0).abs() < 0.01, "{secs}");
    }

    #[test]
    fn extremes_do_not_panic() {
        assert_eq!(bandwidth_delay(5, Duration::ZERO, 0), Duration::ZERO);
        assert_eq!(
            bandwidth_delay(u64::MAX, Duration::ZERO, 1),
            Duration::from_secs(u64::MAX)
        );
        let d = bandwidth_delay(u64::MAX, Duration::MAX, u64::MAX);
        assert_eq!(d, Duration::ZERO);
        assert_eq!(bandwidth_chunk_size(1), 1);
        assert_eq!(bandwidth_chunk_size(u64::MAX), 64 * 1024);
    }

    #[test]
    fn corrupt_across_chunk_boundaries_flips_exactly_the_plan() {
        let body: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let plan = CorruptPlan {
            spans: vec![
                ByteSpan { offset: 0, len: 1 },
                ByteSpan {
                    offset: 95,
                    len: 10,
                },
                ByteSpan {
                    offset: 499,
                    len: 2,
                },
                ByteSpan {
                    offset: 999,
                    len: 5,
                },
            ],
        };
        let mut expected = body.clone();
        for i in [
            0usize, 95, 96, 97, 98, 99, 100, 101, 102, 103, 104, 499, 500, 999,
        ] {
            expected[i] ^= 0xFF;
        }
        for chunk_size in [1usize, 7, 100, 333, 1000, 4096] {
            let mut out = Vec::new();
            for (n, piece) in body.chunks(chunk_size).enumerate() {
                let mut piece = piece.to_vec();
                corrupt_in_place(&mut piece, (n * chunk_size) as u64, &plan);
                out.extend_from_slice(&piece);
            }
            assert_eq!(out, expected, "chunk size {chunk_size}");
        }
        let flipped = body.iter().zip(&expected).filter(|(a, b)| a != b).count();
        assert_eq!(flipped, 14);
    }

    #[test]
    fn corrupt_handles_offsets_near_the_end_of_u64() {
        let plan = CorruptPlan {
            spans: vec![ByteSpan {
                offset: u64::MAX - 1,
                len: u64::MAX,
            }],
        };
        let mut chunk = [0u8; 4];
        corrupt_in_place(&mut chunk, u64::MAX - 2, &plan);
        assert_eq!(chunk, [0, 0xFF, 0, 0]);
        corrupt_in_place(&mut [], 0, &plan);
    }

    #[test]
    fn cuts_land_in_the_right_chunk() {
        // Body streamed as chunks of 100: cut after 250 bytes.
        let verdicts: Vec<Option<usize>> = (0..4).map(|i| cut_within(i * 100, 100, 250)).collect();
        assert_eq!(verdicts, vec![None, None, Some(50), None]);
        assert_eq!(cut_within(0, 100, 0), Some(0));
        assert_eq!(cut_within(0, 100, 100), Some(100));
        assert_eq!(
            cut_within(100, 100, 100),
            None,
            "already cut in the previous chunk"
        );
        assert_eq!(cut_within(u64::MAX - 1, usize::MAX, u64::MAX), Some(1));
        assert_eq!(cut_within(0, 0, 0), Some(0));
    }

    #[test]
    fn plans_merge_neighbours() {
        let plan = CorruptPlan::from_offsets(vec![9, 3, 4, 5, 9, 20]);
        assert_eq!(
            plan.spans,
            vec![
                ByteSpan { offset: 3, len: 3 },
                ByteSpan { offset: 9, len: 1 },
                ByteSpan { offset: 20, len: 1 },
            ]
        );
        assert_eq!(plan.byte_count(), 5);
    }
}
