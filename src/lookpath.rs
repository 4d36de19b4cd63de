//! `look_path`: Go's `exec.LookPath` rules for finding a program on `PATH`.
