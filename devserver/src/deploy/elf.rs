//! Just enough ELF reading to check a `bootstrap` before it ships: its
//! architecture, its dynamic loader and the newest glibc symbol version it
//! needs (Lambda's `provided.al2023` has glibc 2.34; a binary needing a
//! newer `GLIBC_2.x` symbol fails at start with "version not found").

/// `e_machine` values.
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

const PT_INTERP: u32 = 3;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub machine: u16,
    /// The program interpreter (dynamic loader); `None` for a static binary.
    pub interpreter: Option<String>,
    /// Every `GLIBC_x.y[.z]` version the binary needs, as numbers.
    pub glibc_versions: Vec<Vec<u32>>,
}

impl ElfInfo {
    /// The newest glibc version needed, e.g. `[2, 34]`.
    pub fn max_glibc(&self) -> Option<&[u32]> {
        self.glibc_versions.iter().max().map(Vec::as_slice)
    }
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("truncated ELF (offset {at})"))
}
fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("truncated ELF (offset {at})"))
}
fn u64_at(b: &[u8], at: usize) -> Result<usize, String> {
    let v = b
        .get(at..at + 8)
        .map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .ok_or_else(|| format!("truncated ELF (offset {at})"))?;
    usize::try_from(v).map_err(|_| format!("ELF offset {v} out of range"))
}
fn c_str(b: &[u8], at: usize) -> Result<String, String> {
    let rest = b
        .get(at..)
        .ok_or_else(|| format!("string offset {at} out of range"))?;
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Reads a 64-bit little-endian ELF executable (what both Lambda
/// architectures run).
pub fn inspect(b: &[u8]) -> Result<ElfInfo, String> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let machine = u16_at(b, 0x12)?;
    let phoff = u64_at(b, 0x20)?;
    let shoff = u64_at(b, 0x28)?;
    let phentsize = usize::from(u16_at(b, 0x36)?);
    let phnum = usize::from(u16_at(b, 0x38)?);
    let shentsize = usize::from(u16_at(b, 0x3a)?);
    let shnum = usize::from(u16_at(b, 0x3c)?);

    let mut interpreter = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(b, ph)? == PT_INTERP {
            let offset = u64_at(b, ph + 8)?;
            interpreter = Some(c_str(b, offset)?);
        }
    }

    let mut glibc_versions = Vec::new();
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        if u32_at(b, sh + 4)? != SHT_GNU_VERNEED {
            continue;
        }
        let offset = u64_at(b, sh + 24)?;
        let link = usize::try_from(u32_at(b, sh + 40)?).map_err(|e| e.to_string())?;
        let entries = u32_at(b, sh + 44)?;
        let strtab = u64_at(b, shoff + link * shentsize + 24)?;
        let mut need = offset;
        for _ in 0..entries {
            let count = u16_at(b, need + 2)?;
            let mut aux = need + u32_at(b, need + 8)? as usize;
            for _ in 0..count {
                let name = c_str(b, strtab + u32_at(b, aux + 8)? as usize)?;
                if let Some(version) = name.strip_prefix("GLIBC_") {
                    let parts: Result<Vec<u32>, _> = version.split('.').map(str::parse).collect();
                    if let Ok(parts) = parts {
                        glibc_versions.push(parts);
                    }
                }
                aux += u32_at(b, aux + 12)? as usize;
            }
            let next = u32_at(b, need + 12)? as usize;
            if next == 0 {
                break;
            }
            need += next;
        }
    }
    glibc_versions.sort();
    glibc_versions.dedup();
    Ok(ElfInfo {
        machine,
        interpreter,
        glibc_versions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_test_binary() {
        let exe = std::env::current_exe().expect("current exe");
        let bytes = std::fs::read(exe).expect("read");
        let info = inspect(&bytes).expect("elf");
        #[cfg(target_arch = "x86_64")]
        assert_eq!(info.machine, EM_X86_64);
        #[cfg(all(target_env = "gnu", target_os = "linux"))]
        {
            assert!(info.interpreter.is_some());
            assert_eq!(info.max_glibc().map(|v| v[0]), Some(2), "{info:?}");
        }
    }

    #[test]
    fn refuses_other_files() {
        assert!(inspect(b"#!/bin/sh\n").is_err());
        assert!(inspect(b"\x7fELF\x01\x01").is_err());
    }
}
