//! A ZIP's directory and one entry's bytes, read by Roster itself rather than by the `zip` crate.
//!
//! The crate cannot be bounded from outside: when the last end-of-directory record does not parse, or its directory
//! does not, it tries every earlier `PK\x05\x06` in the file, and the directory it settles on is read whole into
//! ~250 bytes of memory per 46-byte entry. A checked last record therefore said nothing about the directory the
//! crate would read, and a crafted upload could make it build one entry per 46 bytes of the file. Here exactly one
//! record is read (the last one in the file's tail whose comment fits), its directory is at most
//! [`ENTRIES_MAX`] entries in at most [`DIRECTORY_MAX_BYTES`] lying before it, and anything else is refused. Entries
//! are stored or deflated (what every ZIP tool writes by default); an entry's bytes are checked against its CRC-32
//! and size when they end.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use crate::domain::ValidationError;

/// Most entries in a ZIP, and largest central directory: the directory is read whole.
pub const ENTRIES_MAX: u64 = 10_000;
pub const DIRECTORY_MAX_BYTES: u64 = 1024 * 1024;

const END: u32 = 0x0605_4b50;
const END64: u32 = 0x0606_4b50;
const END64_LOCATOR: u32 = 0x0706_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
/// The end record's size without its comment, and the longest comment.
const END_LEN: usize = 22;
const COMMENT_MAX: usize = 65_535;
const STORED: u16 = 0;
const DEFLATED: u16 = 8;

/// One entry of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// As stored (UTF-8, or a legacy code page shown with replacement characters).
    pub name: String,
    /// Decompressed size, as the directory says (checked when the bytes end).
    pub size: u64,
    compressed: u64,
    crc: u32,
    method: u16,
    flags: u16,
    local_header: u64,
    /// Where the directory starts: the entry's data ends before it.
    directory: u64,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError(message.into())
}

/// Little-endian fields of a byte slice, failing (not panicking) past its end.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes(&self, at: usize, len: usize) -> Result<&[u8], ValidationError> {
        at.checked_add(len)
            .and_then(|end| self.0.get(at..end))
            .ok_or_else(|| invalid("the ZIP's directory is cut short"))
    }
    fn u16(&self, at: usize) -> Result<u16, ValidationError> {
        Ok(u16::from_le_bytes(
            self.bytes(at, 2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&self, at: usize) -> Result<u32, ValidationError> {
        Ok(u32::from_le_bytes(
            self.bytes(at, 4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&self, at: usize) -> Result<u64, ValidationError> {
        Ok(u64::from_le_bytes(
            self.bytes(at, 8)?.try_into().unwrap_or_default(),
        ))
    }
}

fn unreadable(err: io::Error) -> ValidationError {
    invalid(format!("the ZIP cannot be read: {err}"))
}

fn read_at(file: &mut File, offset: u64, len: usize) -> Result<Vec<u8>, ValidationError> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(unreadable)?;
    Ok(buf)
}

/// Where the directory is: its offset, size and entry count, from the last end record (and its ZIP64 form).
fn locate(file: &mut File) -> Result<(u64, u64, u64), ValidationError> {
    let length = file.seek(SeekFrom::End(0)).map_err(unreadable)?;
    let tail_length = length.min((END_LEN + COMMENT_MAX) as u64);
    let tail_start = length - tail_length;
    let tail = read_at(file, tail_start, usize::try_from(tail_length).unwrap_or(0))?;
    let fields = Fields(&tail);
    // The record whose comment ends the file; failing that, the last whose comment ends within it (some writers
    // leave bytes after it).
    let is_record = |i: usize, within: bool| {
        fields.u32(i).ok() == Some(END)
            && fields.u16(i + 20).is_ok_and(|comment| {
                let end = i + END_LEN + usize::from(comment);
                if within {
                    end <= tail.len()
                } else {
                    end == tail.len()
                }
            })
    };
    let candidates = 0..tail.len().saturating_sub(END_LEN - 1);
    // The earliest record ending the file is the real one when its comment holds another (which also ends it).
    let at = candidates
        .clone()
        .find(|&i| is_record(i, false))
        .or_else(|| candidates.rev().find(|&i| is_record(i, true)))
        .ok_or_else(|| invalid("the file is not a readable ZIP: no end of central directory"))?;
    let end_at = tail_start + at as u64;
    let (disk, directory_disk) = (fields.u16(at + 4)?, fields.u16(at + 6)?);
    let (on_disk, total) = (
        u64::from(fields.u16(at + 8)?),
        u64::from(fields.u16(at + 10)?),
    );
    let (size, offset) = (
        u64::from(fields.u32(at + 12)?),
        u64::from(fields.u32(at + 16)?),
    );
    let zip64 =
        on_disk == 0xFFFF || total == 0xFFFF || size == 0xFFFF_FFFF || offset == 0xFFFF_FFFF;
    let (on_disk, total, size, offset, before) = if zip64 {
        // The locator is just before the record, and says where the 64-bit record is.
        let locator_at = end_at
            .checked_sub(20)
            .ok_or_else(|| invalid("the ZIP64 directory cannot be found"))?;
        let locator = read_at(file, locator_at, 20)?;
        let locator = Fields(&locator);
        if locator.u32(0)? != END64_LOCATOR || locator.u32(16)? != 1 {
            return Err(invalid("the ZIP64 directory cannot be found"));
        }
        let record_at = locator.u64(8)?;
        if record_at.checked_add(56).is_none_or(|end| end > locator_at) {
            return Err(invalid("the ZIP64 directory cannot be found"));
        }
        let record = read_at(file, record_at, 56)?;
        let record = Fields(&record);
        if record.u32(0)? != END64 || record.u32(16)? != 0 || record.u32(20)? != 0 {
            return Err(invalid(
                "the ZIP64 directory cannot be found, or spans disks",
            ));
        }
        (
            record.u64(24)?,
            record.u64(32)?,
            record.u64(40)?,
            record.u64(48)?,
            record_at,
        )
    } else {
        if disk != 0 || directory_disk != 0 {
            return Err(invalid("ZIPs split over several disks are not supported"));
        }
        (on_disk, total, size, offset, end_at)
    };
    if on_disk != total {
        return Err(invalid("ZIPs split over several disks are not supported"));
    }
    if total > ENTRIES_MAX || size > DIRECTORY_MAX_BYTES {
        return Err(invalid(format!(
            "the ZIP has {total} entries in a {size}-byte directory; at most {ENTRIES_MAX} entries and \
             {DIRECTORY_MAX_BYTES} bytes are accepted"
        )));
    }
    if offset.checked_add(size).is_none_or(|end| end > before) {
        return Err(invalid("the ZIP's directory lies outside the file"));
    }
    Ok((offset, size, total))
}

/// The ZIP's entries, in the directory's order.
pub fn directory(file: &mut File) -> Result<Vec<Entry>, ValidationError> {
    let (offset, size, count) = locate(file)?;
    let bytes = read_at(file, offset, usize::try_from(size).unwrap_or(0))?;
    let fields = Fields(&bytes);
    let mut entries = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut at = 0usize;
    for _ in 0..count {
        if fields.u32(at)? != CENTRAL {
            return Err(invalid("the ZIP's directory is damaged"));
        }
        let (flags, method, crc) = (
            fields.u16(at + 8)?,
            fields.u16(at + 10)?,
            fields.u32(at + 16)?,
        );
        let mut compressed = u64::from(fields.u32(at + 20)?);
        let mut size = u64::from(fields.u32(at + 24)?);
        let name_len = usize::from(fields.u16(at + 28)?);
        let extra_len = usize::from(fields.u16(at + 30)?);
        let comment_len = usize::from(fields.u16(at + 32)?);
        let mut local_header = u64::from(fields.u32(at + 42)?);
        let name = fields.bytes(at + 46, name_len)?;
        // Bit 11: the name is UTF-8; older tools wrote a code page, whose non-ASCII names are shown replaced.
        let name = String::from_utf8_lossy(name).into_owned();
        let extra = Fields(fields.bytes(at + 46 + name_len, extra_len)?);
        // The ZIP64 extra field holds, in this order, the 64-bit form of each field that is saturated.
        let mut field = 0;
        while field + 4 <= extra_len {
            let (id, len) = (extra.u16(field)?, usize::from(extra.u16(field + 2)?));
            if id == 1 {
                let zip64 = Fields(extra.bytes(field + 4, len)?);
                let mut next = 0;
                for value in [&mut size, &mut compressed, &mut local_header] {
                    if *value == 0xFFFF_FFFF {
                        *value = zip64.u64(next)?;
                        next += 8;
                    }
                }
            }
            field += 4 + len;
        }
        entries.push(Entry {
            name,
            size,
            compressed,
            crc,
            method,
            flags,
            local_header,
            directory: offset,
        });
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// `entry`'s decompressed bytes; the reader fails if they do not match its CRC-32 and size.
pub fn open<'a>(file: &'a mut File, entry: &Entry) -> io::Result<Box<dyn Read + 'a>> {
    let damaged = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    if entry.flags & 1 != 0 {
        return Err(damaged(format!("{} is encrypted", entry.name)));
    }
    file.seek(SeekFrom::Start(entry.local_header))?;
    let mut header = [0u8; 30];
    file.read_exact(&mut header)?;
    let header = Fields(&header);
    let (Ok(LOCAL), Ok(name_len), Ok(extra_len)) = (header.u32(0), header.u16(26), header.u16(28))
    else {
        return Err(damaged(format!(
            "the ZIP's entry {} is damaged",
            entry.name
        )));
    };
    // Bytes in front of the archive (a self-extractor, two files joined) would move every offset: refused here,
    // plainly, rather than read from the wrong place (which the CRC would catch only at the end).
    let data_start = entry
        .local_header
        .checked_add(30 + u64::from(name_len) + u64::from(extra_len));
    if data_start
        .and_then(|start| start.checked_add(entry.compressed))
        .is_none_or(|end| end > entry.directory)
    {
        return Err(damaged(format!(
            "the ZIP's entry {} runs into its directory (are there bytes before the archive?)",
            entry.name
        )));
    }
    file.seek(SeekFrom::Start(data_start.unwrap_or_default()))?;
    let data = BufReader::with_capacity(64 * 1024, (&mut *file).take(entry.compressed));
    let inner: Box<dyn Read + 'a> = match entry.method {
        STORED => Box::new(data),
        DEFLATED => Box::new(flate2::bufread::DeflateDecoder::new(data)),
        method => {
            return Err(damaged(format!(
                "{} is compressed with method {method}; stored and deflated entries are read",
                entry.name
            )));
        }
    };
    Ok(Box::new(Checked {
        inner,
        hasher: crc32fast::Hasher::new(),
        read: 0,
        entry: entry.clone(),
    }))
}

/// Checks an entry's bytes against its CRC-32 and size when they end.
struct Checked<'a> {
    inner: Box<dyn Read + 'a>,
    hasher: crc32fast::Hasher,
    read: u64,
    entry: Entry,
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if n == 0 && !buf.is_empty() {
            let crc = self.hasher.clone().finalize();
            if crc != self.entry.crc || self.read != self.entry.size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is damaged: {} bytes with CRC-32 {crc:08x}, where the ZIP says {} bytes with {:08x}",
                        self.entry.name, self.read, self.entry.size, self.entry.crc
                    ),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn zip_with(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        let mut writer = zip::ZipWriter::new(&mut file);
        for (name, bytes, method) in entries {
            writer
                .start_file(
                    *name,
                    zip::write::SimpleFileOptions::default().compression_method(*method),
                )
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap();
        file
    }

    fn read_all(file: &mut File, entry: &Entry) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        open(file, entry)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn stored_and_deflated_entries_read_back_as_written() {
        let big = b"email,name\n".repeat(10_000);
        let mut file = zip_with(&[
            ("dir/", b"", zip::CompressionMethod::Stored),
            ("a.csv", b"email\na@b.c\n", zip::CompressionMethod::Stored),
            ("b.csv", &big, zip::CompressionMethod::Deflated),
        ]);
        let entries = directory(&mut file).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dir/", "a.csv", "b.csv"]);
        assert!(entries[0].is_dir() && !entries[1].is_dir());
        assert_eq!(entries[2].size, big.len() as u64);
        assert_eq!(read_all(&mut file, &entries[1]).unwrap(), b"email\na@b.c\n");
        assert_eq!(read_all(&mut file, &entries[2]).unwrap(), big);
    }

    #[test]
    fn a_zip_with_too_many_entries_is_refused_before_its_directory_is_read() {
        let names: Vec<String> = (0..=ENTRIES_MAX).map(|i| format!("{i}.txt")).collect();
        let entries: Vec<_> = names
            .iter()
            .map(|n| (n.as_str(), &b""[..], zip::CompressionMethod::Stored))
            .collect();
        let err = directory(&mut zip_with(&entries)).unwrap_err();
        assert!(err.0.contains("10001 entries"), "{}", err.0);
        let mut not_zip = tempfile::tempfile().unwrap();
        not_zip.write_all(b"PK\x03\x04 and nothing more").unwrap();
        assert!(directory(&mut not_zip).is_err());
    }

    /// A ZIP of one stored entry, then a ZIP64 end record declaring `entries` entries, its locator, and an end
    /// record that says one entry and saturates only the directory's offset (which is what sends a reader to
    /// the ZIP64 record).
    fn zip64_claiming(entries: u64) -> File {
        let mut file = zip_with(&[("a.csv", b"email\n", zip::CompressionMethod::Stored)]);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        let end = bytes.len() - END_LEN;
        let directory_size = u32::from_le_bytes(bytes[end + 12..end + 16].try_into().unwrap());
        let directory_at = u32::from_le_bytes(bytes[end + 16..end + 20].try_into().unwrap());
        bytes.truncate(end);
        let record_at = bytes.len() as u64;
        bytes.extend(END64.to_le_bytes());
        bytes.extend(44u64.to_le_bytes());
        bytes.extend([45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        bytes.extend(entries.to_le_bytes());
        bytes.extend(entries.to_le_bytes());
        bytes.extend(u64::from(directory_size).to_le_bytes());
        bytes.extend(u64::from(directory_at).to_le_bytes());
        bytes.extend(END64_LOCATOR.to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        bytes.extend(record_at.to_le_bytes());
        bytes.extend(1u32.to_le_bytes());
        bytes.extend(END.to_le_bytes());
        bytes.extend([0, 0, 0, 0, 1, 0, 1, 0]);
        bytes.extend(directory_size.to_le_bytes());
        bytes.extend(0xFFFF_FFFFu32.to_le_bytes());
        bytes.extend([0, 0]);
        let mut out = tempfile::tempfile().unwrap();
        out.write_all(&bytes).unwrap();
        out
    }

    #[test]
    fn a_saturated_offset_sends_the_count_to_the_zip64_record_which_is_bounded() {
        let entries = directory(&mut zip64_claiming(1)).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "a.csv");
        let err = directory(&mut zip64_claiming(5_000_000)).unwrap_err();
        assert!(err.0.contains("5000000 entries"), "{}", err.0);
    }

    #[test]
    fn only_the_last_end_record_counts_and_a_damaged_one_is_not_passed_over() {
        // A well-formed ZIP stored inside another entry, then the outer ZIP's end record damaged: a reader that
        // falls back to earlier records would find the inner one.
        let inner = {
            let mut file = zip_with(&[("a.csv", b"email\n", zip::CompressionMethod::Stored)]);
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.read_to_end(&mut bytes).unwrap();
            bytes
        };
        let mut file = zip_with(&[("inner.zip", &inner, zip::CompressionMethod::Stored)]);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        let end = bytes.len() - END_LEN;
        bytes[end + 16..end + 20].copy_from_slice(&u32::MAX.wrapping_sub(1).to_le_bytes());
        let mut damaged = tempfile::tempfile().unwrap();
        damaged.write_all(&bytes).unwrap();
        let err = directory(&mut damaged).unwrap_err();
        assert!(err.0.contains("outside the file"), "{}", err.0);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]
        /// Any bytes of a ZIP changed (its records, sizes, offsets, names, data): the reader answers or refuses,
        /// and never panics, loops or reads past the bounds.
        #[test]
        fn a_zip_with_any_bytes_changed_is_read_or_refused_never_a_panic(
            changes in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..8),
            deflated in proptest::prelude::any::<bool>(),
        ) {
            let method = if deflated { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
            let mut file = zip_with(&[
                ("a/", b"", zip::CompressionMethod::Stored),
                ("a/one.csv", b"email,name\na@b.c,A\n", method),
                ("two.csv", &b"x".repeat(300), method),
            ]);
            let mut bytes = Vec::new();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.read_to_end(&mut bytes).unwrap();
            for (at, value) in changes {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            let mut changed = tempfile::tempfile().unwrap();
            changed.write_all(&bytes).unwrap();
            if let Ok(entries) = directory(&mut changed) {
                proptest::prop_assert!(entries.len() as u64 <= ENTRIES_MAX);
                for entry in &entries {
                    if let Ok(mut reader) = open(&mut changed, entry) {
                        // Bounded as the import reads it.
                        let mut sink = Vec::new();
                        let _ = (&mut reader).take(1 << 20).read_to_end(&mut sink);
                    }
                }
            }
        }
    }

    fn bytes_of(file: &mut File) -> Vec<u8> {
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        bytes
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn a_comment_holding_an_end_record_signature_is_read_as_a_comment() {
        let mut file = zip_with(&[("a.csv", b"email\n", zip::CompressionMethod::Stored)]);
        let mut bytes = bytes_of(&mut file);
        // An empty end record's bytes as the archive's comment.
        let comment: Vec<u8> = [&END.to_le_bytes()[..], &[0u8; 18]].concat();
        let len = bytes.len();
        bytes[len - 2..].copy_from_slice(&(comment.len() as u16).to_le_bytes());
        bytes.extend(&comment);
        let entries = directory(&mut file_of(&bytes)).unwrap();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn an_entry_whose_data_would_run_into_the_directory_is_refused_plainly() {
        let mut file = zip_with(&[("a.csv", b"email\na@b.c\n", zip::CompressionMethod::Stored)]);
        let entry = directory(&mut file).unwrap().remove(0);
        assert_eq!(read_all(&mut file, &entry).unwrap(), b"email\na@b.c\n");
        let overlong = Entry {
            compressed: entry.compressed + 1,
            ..entry
        };
        let err = read_all(&mut file, &overlong).unwrap_err();
        assert!(err.to_string().contains("runs into its directory"), "{err}");
        // Bytes in front of an archive move its directory's offset: refused before any entry is read.
        let shifted = [&b"PK\x03\x04"[..], &bytes_of(&mut file)].concat();
        assert!(directory(&mut file_of(&shifted)).is_err());
    }

    #[test]
    fn damaged_bytes_fail_their_crc_and_unknown_methods_are_named() {
        let mut file = zip_with(&[("a.csv", b"email\na@b.c\n", zip::CompressionMethod::Stored)]);
        let entry = directory(&mut file).unwrap().remove(0);
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).unwrap();
        file.read_to_end(&mut bytes).unwrap();
        let at = bytes.windows(5).position(|w| w == b"a@b.c").unwrap();
        bytes[at] = b'x';
        let mut damaged = tempfile::tempfile().unwrap();
        damaged.write_all(&bytes).unwrap();
        let err = read_all(&mut damaged, &entry).unwrap_err();
        assert!(err.to_string().contains("CRC-32"), "{err}");
        let bzip = Entry {
            method: 12,
            ..entry
        };
        let err = read_all(&mut file, &bzip).err().unwrap();
        assert!(err.to_string().contains("method 12"), "{err}");
    }
}
