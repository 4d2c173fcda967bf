//! `say!` and `say_err!`: the pipeline's log lines, written so that a closed
//! stdout or stderr (a pipe whose reader went away) can never panic a
//! component thread — `println!` would, and take the thread with it.

/// Like `println!`, but ignores write errors.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout().lock(), $($arg)*);
    }};
}

/// Like `eprintln!`, but ignores write errors.
#[macro_export]
macro_rules! say_err {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}
