//! `--tiny`: a 132-byte static x86_64 executable doing `exit_group(0)`, written to a private
//! directory.

use std::io::Write;
use std::process::Command;

use crate::BoxError;

/// Where the tiny program is loaded: the traditional base of x86_64 executables, well above
/// `vm.mmap_min_addr`.
pub const TINY_VADDR: u64 = 0x40_0000;

/// A minimal static x86_64 Linux executable: the 64-byte ELF header, one 56-byte program
/// header (a single `PT_LOAD` mapping the whole file, read + execute), and 12 bytes of code
/// doing `exit_group(0)`. No sections, no interpreter, no C library: `execve` maps one page
/// and jumps to the code, which exits at once.
pub fn tiny_elf() -> Vec<u8> {
    const EHDR_SIZE: u16 = 64;
    const PHDR_SIZE: u16 = 56;
    // The code, at the end of the file:
    const CODE: [u8; 12] = [
        0xbf, 0x00, 0x00, 0x00, 0x00, // mov edi, 0     exit status
        0xb8, 0xe7, 0x00, 0x00, 0x00, // mov eax, 231   __NR_exit_group
        0x0f, 0x05, //                   syscall
    ];
    let code_offset = u64::from(EHDR_SIZE + PHDR_SIZE);
    let file_len = code_offset + CODE.len() as u64;

    let mut f = Vec::with_capacity(file_len as usize);
    let u16le = |f: &mut Vec<u8>, v: u16| f.extend_from_slice(&v.to_le_bytes());
    let u32le = |f: &mut Vec<u8>, v: u32| f.extend_from_slice(&v.to_le_bytes());
    let u64le = |f: &mut Vec<u8>, v: u64| f.extend_from_slice(&v.to_le_bytes());

    // ELF header (Elf64_Ehdr).
    // e_ident[0..4]: the magic number.
    f.extend_from_slice(b"\x7fELF");
    f.push(2); // e_ident[EI_CLASS] = ELFCLASS64
    f.push(1); // e_ident[EI_DATA] = ELFDATA2LSB (little-endian)
    f.push(1); // e_ident[EI_VERSION] = EV_CURRENT
    f.push(0); // e_ident[EI_OSABI] = ELFOSABI_SYSV
    f.push(0); // e_ident[EI_ABIVERSION]
    f.extend_from_slice(&[0; 7]); // e_ident[EI_PAD..16]: padding
    u16le(&mut f, 2); // e_type = ET_EXEC (fixed addresses, not position-independent)
    u16le(&mut f, 62); // e_machine = EM_X86_64
    u32le(&mut f, 1); // e_version = EV_CURRENT
    u64le(&mut f, TINY_VADDR + code_offset); // e_entry: the code's virtual address
    u64le(&mut f, u64::from(EHDR_SIZE)); // e_phoff: program headers right after this one
    u64le(&mut f, 0); // e_shoff: no section headers
    u32le(&mut f, 0); // e_flags: none defined for x86_64
    u16le(&mut f, EHDR_SIZE); // e_ehsize
    u16le(&mut f, PHDR_SIZE); // e_phentsize
    u16le(&mut f, 1); // e_phnum
    u16le(&mut f, 0); // e_shentsize: no section headers
    u16le(&mut f, 0); // e_shnum
    u16le(&mut f, 0); // e_shstrndx = SHN_UNDEF
    assert_eq!(f.len(), usize::from(EHDR_SIZE));

    // The one program header (Elf64_Phdr).
    u32le(&mut f, 1); // p_type = PT_LOAD
    u32le(&mut f, 4 | 1); // p_flags = PF_R | PF_X
    u64le(&mut f, 0); // p_offset: map from the start of the file (headers included)
    u64le(&mut f, TINY_VADDR); // p_vaddr
    u64le(&mut f, TINY_VADDR); // p_paddr (unused; same as p_vaddr by convention)
    u64le(&mut f, file_len); // p_filesz: the whole file
    u64le(&mut f, file_len); // p_memsz: no .bss
    u64le(&mut f, 0x1000); // p_align: the page size (p_offset ≡ p_vaddr modulo it)
    assert_eq!(f.len() as u64, code_offset);

    f.extend_from_slice(&CODE);
    assert_eq!(f.len() as u64, file_len);
    f
}

/// `--tiny`: [`tiny_elf`] written to a private directory, both removed when dropped (on
/// every return from `run`, errors included).
pub struct TinyProgram {
    pub dir: std::path::PathBuf,
    pub path: std::path::PathBuf,
    pub len: usize,
}

impl TinyProgram {
    pub fn create() -> Result<TinyProgram, BoxError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let elf = tiny_elf();
        let tmp = std::env::temp_dir();
        // A new directory only this user can enter: nobody can swap the file between its
        // writing and its executions. A leftover of an earlier run with the same pid is
        // skipped, not reused.
        let mut dir = None;
        for k in 0..100 {
            let d = tmp.join(format!("spawn_bench-tiny.{}.{k}", std::process::id()));
            match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {
                    dir = Some(d);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(format!("--tiny: creating {}: {e}", d.display()).into()),
            }
        }
        let dir =
            dir.ok_or_else(|| format!("--tiny: no free directory name in {}", tmp.display()))?;
        // From here on, dropping `tiny` cleans up whatever exists.
        let tiny = TinyProgram {
            path: dir.join("tiny"),
            dir,
            len: elf.len(),
        };
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(&tiny.path)?;
            file.write_all(&elf)?;
            // 0755 whatever the umask; the file is closed at the end of this closure, before
            // any exec (a file open for writing cannot be executed: ETXTBSY).
            file.set_permissions(std::fs::Permissions::from_mode(0o755))
        };
        write().map_err(|e| format!("--tiny: writing {}: {e}", tiny.path.display()))?;
        // Run it once, so that a temporary directory on a `noexec` mount fails here with a
        // hint rather than as a spawn error in the first row.
        match Command::new(&tiny.path).status() {
            Ok(s) if s.success() => Ok(tiny),
            Ok(s) => Err(format!("--tiny: {} exited with {s}", tiny.path.display()).into()),
            Err(e) => Err(format!(
                "--tiny: cannot execute {}: {e} (is {} mounted noexec? set TMPDIR to another directory)",
                tiny.path.display(),
                tmp.display()
            )
            .into()),
        }
    }
}

impl Drop for TinyProgram {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
