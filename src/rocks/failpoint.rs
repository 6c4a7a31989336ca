//! Fail points: named steps whose failure tests inject, with tikv's `fail`
//! crate, when rocksmq is built with the `fault-injection` feature. Without it
//! every check compiles to `Ok(())`.
//!
//! A test sets `fail::cfg(name, "return")` to make the step fail, or
//! `"return(topic-a)"` to make it fail only for the topic (or group) of
//! that name; `"panic"` panics there instead.

use std::io;

/// Fails with an injected I/O error if fail point `name` is set to
/// `return`, and its argument, if any, is `subject`.
#[inline]
#[cfg_attr(
    not(feature = "fault-injection"),
    allow(unused_variables, clippy::unnecessary_wraps)
)]
pub(crate) fn check(name: &str, subject: &str) -> io::Result<()> {
    #[cfg(feature = "fault-injection")]
    if let Some(argument) = fail::eval(name, |argument| argument)
        && argument
            .as_deref()
            .is_none_or(|argument| argument.is_empty() || argument == subject)
    {
        return Err(io::Error::other(format!("injected failure at {name}")));
    }
    Ok(())
}
