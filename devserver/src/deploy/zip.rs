//! The zip Lambda takes: one `bootstrap` entry, deflated, Unix mode 0755,
//! and a fixed timestamp so the same binary always gives the same zip (and
//! the same `source_code_hash`, so Terraform updates a function only when
//! its code changed).
//! <https://pkware.cachefly.net/webdocs/casestudies/APPNOTE.TXT>

use std::io::Write;

use flate2::Compression;
use flate2::Crc;
use flate2::write::DeflateEncoder;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const DEFLATE: u16 = 8;
const VERSION_NEEDED: u16 = 20;
/// "Made by" Unix (3), so readers take the mode from the external attributes.
const VERSION_MADE_BY_UNIX: u16 = (3 << 8) | 20;
/// 1980-01-01 00:00:00, the earliest DOS date.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

/// A zip holding `data` as the single file `name` with Unix `mode`
/// (e.g. `0o755`).
pub fn single_file(name: &str, data: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let too_big = || std::io::Error::other("file too large for a zip without ZIP64 (4 GiB)");
    let mut crc = Crc::new();
    crc.update(data);
    let mut encoder = DeflateEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    let compressed = encoder.finish()?;
    let size = u32::try_from(data.len()).map_err(|_| too_big())?;
    let compressed_size = u32::try_from(compressed.len()).map_err(|_| too_big())?;
    let name_len = u16::try_from(name.len()).map_err(|_| std::io::Error::other("name too long"))?;

    let mut out = Vec::with_capacity(compressed.len() + 200);
    let common = |out: &mut Vec<u8>| {
        out.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // flags
        out.extend_from_slice(&DEFLATE.to_le_bytes());
        out.extend_from_slice(&DOS_TIME.to_le_bytes());
        out.extend_from_slice(&DOS_DATE.to_le_bytes());
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&compressed_size.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // extra field length
    };
    out.extend_from_slice(&LOCAL_HEADER.to_le_bytes());
    common(&mut out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&compressed);

    let central_offset = u32::try_from(out.len()).map_err(|_| too_big())?;
    out.extend_from_slice(&CENTRAL_HEADER.to_le_bytes());
    out.extend_from_slice(&VERSION_MADE_BY_UNIX.to_le_bytes());
    common(&mut out);
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out.extend_from_slice(&0u16.to_le_bytes()); // disk number
    out.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    out.extend_from_slice(&((0o100_000 | mode) << 16).to_le_bytes()); // regular file + mode
    out.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    out.extend_from_slice(name.as_bytes());
    let central_size = u32::try_from(out.len()).map_err(|_| too_big())? - central_offset;

    out.extend_from_slice(&END_OF_CENTRAL_DIRECTORY.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // this disk
    out.extend_from_slice(&0u16.to_le_bytes()); // disk with the central directory
    out.extend_from_slice(&1u16.to_le_bytes()); // entries on this disk
    out.extend_from_slice(&1u16.to_le_bytes()); // entries
    out.extend_from_slice(&central_size.to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    Ok(out)
}

/// The one file of a zip written by [`single_file`] (or any zip whose
/// first entry is deflated or stored): name, Unix mode and contents.
pub fn read_first(zip: &[u8]) -> std::io::Result<(String, u32, Vec<u8>)> {
    use std::io::Read;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let u16_at = |at: usize| -> std::io::Result<u16> {
        zip.get(at..at + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .ok_or_else(|| bad("truncated zip"))
    };
    let u32_at = |at: usize| -> std::io::Result<u32> {
        zip.get(at..at + 4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or_else(|| bad("truncated zip"))
    };
    let eocd = zip
        .len()
        .checked_sub(22)
        .ok_or_else(|| bad("too short for a zip"))?;
    if u32_at(eocd)? != END_OF_CENTRAL_DIRECTORY {
        return Err(bad("no end of central directory (zip with a comment?)"));
    }
    let central = u32_at(eocd + 16)? as usize;
    if u32_at(central)? != CENTRAL_HEADER {
        return Err(bad("no central directory header"));
    }
    let method = u16_at(central + 10)?;
    let compressed_size = u32_at(central + 20)? as usize;
    let name_len = usize::from(u16_at(central + 28)?);
    let mode = (u32_at(central + 38)? >> 16) & 0o7777;
    let local = u32_at(central + 42)? as usize;
    let name = zip
        .get(central + 46..central + 46 + name_len)
        .ok_or_else(|| bad("truncated name"))?;
    let name = String::from_utf8_lossy(name).into_owned();
    let data_start =
        local + 30 + usize::from(u16_at(local + 26)?) + usize::from(u16_at(local + 28)?);
    let data = zip
        .get(data_start..data_start + compressed_size)
        .ok_or_else(|| bad("truncated data"))?;
    let contents = match method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::new();
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out)?;
            out
        }
        m => return Err(bad(&format!("compression method {m} is not supported"))),
    };
    Ok((name, mode, contents))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_name_mode_and_contents() {
        let data = b"#!/bin/sh\necho hello\n".repeat(100);
        let zip = single_file("bootstrap", &data, 0o755).expect("zip");
        let (name, mode, contents) = read_first(&zip).expect("read");
        assert_eq!(name, "bootstrap");
        assert_eq!(mode, 0o755);
        assert_eq!(contents, data);
    }

    #[test]
    fn same_input_gives_the_same_bytes() {
        let a = single_file("bootstrap", b"x", 0o755).expect("zip");
        let b = single_file("bootstrap", b"x", 0o755).expect("zip");
        assert_eq!(a, b);
    }
}
