//! Giving up root once the listeners are bound (`[server] user`).

use anyhow::{Context, bail};
use std::ffi::CString;

/// Switches the whole process (every thread) to `user` and its primary group, with no
/// supplementary groups. Refuses when not root and not already that user.
pub fn drop_to(user: &str) -> anyhow::Result<()> {
    let name = CString::new(user).context("server.user must not contain NUL")?;
    // getpwnam_r with a buffer of our own: the plain getpwnam uses a static one.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0u8; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live memory of the sizes given.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() {
        bail!("[server] user: no such account '{user}' / アカウント「{user}」がありません");
    }
    let (uid, gid) = (pwd.pw_uid, pwd.pw_gid);
    // SAFETY: plain system calls on integers.
    unsafe {
        if libc::geteuid() == uid {
            return Ok(());
        }
        if libc::geteuid() != 0 {
            bail!("[server] user = '{user}' needs Mamori to be started as root / 切り替えには root で起動してください");
        }
        // glibc applies these to every thread of the process (tokio's workers too).
        if libc::setgroups(1, &gid) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
            bail!("cannot switch to '{user}': {}", std::io::Error::last_os_error());
        }
        if libc::setuid(0) == 0 {
            bail!("switched to '{user}' but root could be regained; refusing to run");
        }
    }
    Ok(())
}
