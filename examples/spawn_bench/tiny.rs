//! `--tiny`: a 132-byte static x86_64 executable doing `exit_group(0)`, written to a private
//! directory.

use std::path::PathBuf;
use std::process::Command;

use crate::BoxError;
use crate::tmp::PrivateDir;

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
    /// Kept for its `Drop`, which removes the file.
    _dir: PrivateDir,
    pub path: PathBuf,
    pub len: usize,
}

impl TinyProgram {
    pub fn create() -> Result<TinyProgram, BoxError> {
        let elf = tiny_elf();
        let dir = PrivateDir::create("tiny").map_err(|e| format!("--tiny: {e}"))?;
        let path = dir
            .write("tiny", &elf, 0o755)
            .map_err(|e| format!("--tiny: {e}"))?;
        // Run it once, so that a temporary directory on a `noexec` mount fails here with a
        // hint rather than as a spawn error in the first row.
        match Command::new(&path).status() {
            Ok(s) if s.success() => Ok(TinyProgram {
                _dir: dir,
                path,
                len: elf.len(),
            }),
            Ok(s) => Err(format!("--tiny: {} exited with {s}", path.display()).into()),
            Err(e) => Err(format!(
                "--tiny: cannot execute {}: {e} (is {} mounted noexec? set TMPDIR to another directory)",
                path.display(),
                std::env::temp_dir().display()
            )
            .into()),
        }
    }
}
