//! Embeds the report model in the page template (`assets/report.html`) as JSON blocks that
//! no recorded text can break out of.

use std::io::{self, Write};

use super::model::{Detail, ReportModel};

/// The page: HTML, CSS and vanilla JS written for modscope, nothing fetched at view time.
pub const TEMPLATE: &str = include_str!("../../assets/report.html");

const DATA_MARK: &str = "/*MODSCOPE_DATA*/";
const DETAILS_MARK: &str = "/*MODSCOPE_DETAILS*/";

/// Writes the page to `out`; returns the bytes written.
pub fn render(out: &mut impl Write, model: &ReportModel, details: &[Detail]) -> io::Result<u64> {
    let (head, rest) = TEMPLATE
        .split_once(DATA_MARK)
        .expect("the report template has a data mark");
    let (middle, tail) = rest
        .split_once(DETAILS_MARK)
        .expect("the report template has a details mark");
    let mut w = Counting { inner: out, n: 0 };
    w.write_all(head.as_bytes())?;
    serde_json::to_writer(ScriptSafe(&mut w), model)?;
    w.write_all(middle.as_bytes())?;
    serde_json::to_writer(ScriptSafe(&mut w), details)?;
    w.write_all(tail.as_bytes())?;
    Ok(w.n)
}

/// Counts what passes through.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Rewrites JSON so it can sit inside `<script type="application/json">`: every `<`
/// becomes `\u003c` (and `>`, `&` likewise), so recorded text such as `</script>` or
/// `<!--` cannot end the block or open a comment. JSON has `<` only inside strings,
/// where the escape means the same character.
struct ScriptSafe<W: Write>(W);

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, &b) in buf.iter().enumerate() {
            let escaped: &[u8] = match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                b'&' => b"\\u0026",
                _ => continue,
            };
            self.0.write_all(&buf[start..i])?;
            self.0.write_all(escaped)?;
            start = i + 1;
        }
        self.0.write_all(&buf[start..])?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_cannot_close_the_script_block() {
        let mut out = Vec::new();
        let value = serde_json::json!({"u": "</script><!-- & </SCRIPT >"});
        serde_json::to_writer(ScriptSafe(&mut out), &value).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value, "the escapes decode to the same text");
    }

    #[test]
    fn template_has_each_mark_once_and_fetches_nothing() {
        assert_eq!(TEMPLATE.matches(DATA_MARK).count(), 1);
        assert_eq!(TEMPLATE.matches(DETAILS_MARK).count(), 1);
        for remote in ["http://", "https://", "//cdn", "@import", "url("] {
            assert!(
                !TEMPLATE.contains(remote),
                "the page must be self-contained, found {remote:?}"
            );
        }
    }
}
