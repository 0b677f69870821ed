//! The uploaded file as rows: a CSV, or a ZIP holding one. Read with fixed buffers (`csv_core`), so no row, column
//! count or file size decides how much memory the import takes: a row past [`IMPORT_ROW_MAX_BYTES`] or with more
//! than [`IMPORT_COLUMNS_MAX`] columns is read to its end and reported, not held; a ZIP's CSV is read through a
//! bound on its decompressed size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};

use super::archive;
use crate::domain::{IMPORT_COLUMNS_MAX, IMPORT_ROW_MAX_BYTES, ValidationError, import_file_name};

/// The four bytes every ZIP file starts with.
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// Ignored ZIP entries named in the log.
const IGNORED_NAMED_MAX: usize = 20;

/// What the uploaded file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Csv,
    /// The CSV entry used.
    Zip(archive::Entry),
}

/// The uploaded file, checked: a CSV, or a ZIP with a CSV in it.
#[derive(Debug)]
pub struct Source {
    file: File,
    kind: Kind,
    /// Most bytes of CSV read (a ZIP's, decompressed).
    limit: u64,
    /// The CSV's name (a ZIP entry's without its directories).
    pub name: String,
    /// ZIP entries left aside, for the log.
    pub ignored: Vec<String>,
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError(message.into())
}

impl Source {
    /// Opens the spooled upload: a file starting with a ZIP header is a ZIP, whose first `.csv` entry is used (as
    /// listmonk does); anything else is read as CSV.
    pub fn open(mut file: File, name: &str, limit: u64) -> Result<Self, ValidationError> {
        let unreadable = |err: io::Error| invalid(format!("the upload cannot be read: {err}"));
        let mut magic = [0u8; 4];
        file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        let read = read_up_to(&mut file, &mut magic).map_err(unreadable)?;
        file.seek(SeekFrom::Start(0)).map_err(unreadable)?;
        if read == 0 {
            return Err(invalid("the file is empty"));
        }
        if &magic[..read] != ZIP_MAGIC {
            return Ok(Self {
                file,
                kind: Kind::Csv,
                limit,
                name: import_file_name(name)?,
                ignored: Vec::new(),
            });
        }
        let entries = archive::directory(&mut file)?;
        let mut chosen = None;
        let mut ignored = Vec::new();
        for entry in entries {
            let is_csv = !entry.is_dir() && entry.name.to_ascii_lowercase().ends_with(".csv");
            match chosen {
                None if is_csv => chosen = Some(entry),
                _ if ignored.len() < IGNORED_NAMED_MAX => ignored.push(entry.name),
                _ => {}
            }
        }
        let Some(entry) = chosen else {
            return Err(invalid("the ZIP holds no .csv file"));
        };
        let size = entry.size;
        if size > limit {
            return Err(invalid(format!(
                "the CSV in the ZIP is {size} bytes once decompressed; at most {limit} are accepted"
            )));
        }
        Ok(Self {
            file,
            name: import_file_name(&entry.name)?,
            kind: Kind::Zip(entry),
            limit,
            ignored,
        })
    }

    /// Reads the CSV's bytes, from the start, through `read` (decompressing a ZIP entry, failing past the limit).
    pub fn with_reader<T>(
        &mut self,
        read: impl FnOnce(&mut dyn Read) -> io::Result<T>,
    ) -> io::Result<T> {
        self.file.seek(SeekFrom::Start(0))?;
        let limit = self.limit;
        match &self.kind {
            Kind::Csv => read(&mut Bounded::new(&mut self.file, limit)),
            Kind::Zip(entry) => read(&mut Bounded::new(
                archive::open(&mut self.file, entry)?,
                limit,
            )),
        }
    }
}

/// Fills as much of `buf` as the reader has.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// A reader that fails once more than `limit` bytes come out of it: a ZIP bomb ends there.
struct Bounded<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Bounded<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One more byte tells whether the input really is longer than the limit.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the CSV is longer than {} bytes", self.limit),
                )),
            };
        }
        let most = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..most])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The lines in a CSV, as listmonk counts them for progress (line breaks, and a last line without one). Gives up
/// (with an error) once `stopped` says so.
pub fn count_lines(reader: &mut dyn Read, stopped: &dyn Fn() -> bool) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut count, mut last) = (0u64, b'\n');
    loop {
        if stopped() {
            return Err(io::Error::other("the import stopped"));
        }
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        count += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(count + u64::from(last != b'\n'))
}

/// One record of the CSV.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// Its fields, and the line it ends on.
    Fields { line: u64, fields: Vec<&'a [u8]> },
    /// Longer than [`IMPORT_ROW_MAX_BYTES`]: read to its end, not kept.
    TooLong { line: u64 },
    /// More than [`IMPORT_COLUMNS_MAX`] columns: read to its end, not kept.
    TooWide { line: u64 },
}

/// A CSV's records, read with buffers of fixed size.
pub struct Records<R> {
    input: BufReader<R>,
    core: csv_core::Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    done: bool,
}

impl<R: Read> Records<R> {
    pub fn new(input: R, delimiter: u8) -> Self {
        Self {
            input: BufReader::with_capacity(64 * 1024, input),
            core: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            out: vec![0; IMPORT_ROW_MAX_BYTES],
            ends: vec![0; IMPORT_COLUMNS_MAX],
            done: false,
        }
    }

    /// The next record, or `None` at the end of the file.
    pub fn next_record(&mut self) -> io::Result<Option<Record<'_>>> {
        use csv_core::ReadRecordResult as R;
        if self.done {
            return Ok(None);
        }
        let (mut out_at, mut ends_at) = (0, 0);
        let (mut too_long, mut too_wide) = (false, false);
        loop {
            let input = self.input.fill_buf()?;
            let at_eof = input.is_empty();
            let (result, read, written, ended) =
                self.core
                    .read_record(input, &mut self.out[out_at..], &mut self.ends[ends_at..]);
            let ended_line = read > 0 && input[read - 1] == b'\n';
            self.input.consume(read);
            out_at += written;
            ends_at += ended;
            match result {
                R::InputEmpty if at_eof => {
                    // csv_core asks for more input only before it has seen the end; an empty read is the end.
                    self.done = true;
                    return Ok(None);
                }
                R::InputEmpty => {}
                R::OutputFull => {
                    too_long = true;
                    out_at = 0;
                    ends_at = 0;
                }
                R::OutputEndsFull => {
                    too_wide = true;
                    ends_at = 0;
                    out_at = 0;
                }
                R::Record => {
                    // A record ending in a line break has moved the line count past its own line.
                    let line = self.core.line() - u64::from(ended_line);
                    return Ok(Some(if too_long {
                        Record::TooLong { line }
                    } else if too_wide {
                        Record::TooWide { line }
                    } else {
                        let mut fields = Vec::with_capacity(ends_at);
                        let mut start = 0;
                        for &end in &self.ends[..ends_at] {
                            fields.push(&self.out[start..end]);
                            start = end;
                        }
                        Record::Fields { line, fields }
                    }));
                }
                R::End => {
                    self.done = true;
                    return Ok(None);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(data: &[u8]) -> Vec<String> {
        let mut records = Records::new(data, b',');
        let mut seen = Vec::new();
        while let Some(record) = records.next_record().unwrap() {
            seen.push(match record {
                Record::Fields { line, fields } => format!(
                    "{line}:{}",
                    fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect::<Vec<_>>()
                        .join("|")
                ),
                Record::TooLong { line } => format!("{line}:too long"),
                Record::TooWide { line } => format!("{line}:too wide"),
            });
        }
        seen
    }

    #[test]
    fn records_carry_the_line_they_end_on() {
        assert_eq!(
            records(b"email,name\na@x.io,A\n\nb@x.io,\"B\nC\"\r\nc@x.io,C"),
            vec!["1:email|name", "2:a@x.io|A", "5:b@x.io|B\nC", "6:c@x.io|C"]
        );
        assert!(records(b"").is_empty());
    }

    #[test]
    fn an_overlong_row_is_skipped_without_being_kept() {
        let mut data = b"email\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', IMPORT_ROW_MAX_BYTES * 3));
        data.extend(b"\nok@x.io\n");
        assert_eq!(records(&data), vec!["1:email", "2:too long", "3:ok@x.io"]);
    }

    #[test]
    fn a_row_with_too_many_columns_is_skipped() {
        let mut data = b"email\n".to_vec();
        data.extend(",".repeat(IMPORT_COLUMNS_MAX * 10).as_bytes());
        data.extend(b"\nok@x.io\n");
        assert_eq!(records(&data), vec!["1:email", "2:too wide", "3:ok@x.io"]);
    }

    #[test]
    fn lines_are_counted_as_listmonk_counts_them() {
        assert_eq!(count_lines(&mut &b"a\nb\n"[..], &|| false).unwrap(), 2);
        assert_eq!(count_lines(&mut &b"a\nb"[..], &|| false).unwrap(), 2);
        assert_eq!(count_lines(&mut &b""[..], &|| false).unwrap(), 0);
        assert!(count_lines(&mut &b"a\n"[..], &|| true).is_err());
    }

    #[test]
    fn the_bound_stops_a_longer_input() {
        let mut bounded = Bounded::new(&b"0123456789"[..], 4);
        let mut out = Vec::new();
        assert!(bounded.read_to_end(&mut out).is_err());
        let mut exact = Bounded::new(&b"0123"[..], 4);
        let mut out = Vec::new();
        exact.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"0123");
    }
}
