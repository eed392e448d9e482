//! Argon2id password hashing and the password policy.

use mamori_core::Problem;

/// Hashes and verifies passwords with Argon2id.
#[derive(Clone)]
pub struct PasswordHasher {
    params: argon2::Params,
}

impl PasswordHasher {
    /// Returns a hasher with memory cost `m_kib` and `t` iterations, one lane.
    pub fn new(m_kib: u32, t: u32) -> Self {
        let params = argon2::Params::new(m_kib.max(8), t.max(1), 1, None).unwrap_or_default();
        Self { params }
    }

    fn argon(&self) -> argon2::Argon2<'static> {
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, self.params.clone())
    }

    /// Returns the PHC string of `password`.
    pub fn hash(&self, password: &str) -> Result<String, String> {
        use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
        let salt = SaltString::generate(&mut OsRng);
        self.argon().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    }

    /// Returns true when `password` matches the PHC string (whatever cost it was made with).
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        match PasswordHash::new(phc) {
            Ok(parsed) => self.argon().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Burns about the time of one verification, so an unknown login name takes as long
    /// as a wrong password.
    pub fn waste(&self) {
        let _ = self.hash("mamori-timing-equalizer");
    }
}

/// Checks a new password: at least `min` characters, at most 256, not the login name,
/// and not made of a single repeated character.
pub fn check_password_policy(password: &str, username: &str, min: usize) -> Result<(), Problem> {
    let n = password.chars().count();
    if n < min {
        return Err(Problem::new(
            "password",
            "too_short",
            format!("パスワードは{min}文字以上にしてください"),
            format!("password must be at least {min} characters"),
        ));
    }
    if n > 256 {
        return Err(Problem::new("password", "too_long", "パスワードは256文字以内にしてください", "password must be at most 256 characters"));
    }
    if password.eq_ignore_ascii_case(username) || password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(Problem::new("password", "contains_username", "パスワードにログイン名を含めないでください", "password must not contain the login name"));
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next()
        && chars.all(|c| c == first)
    {
        return Err(Problem::new("password", "too_simple", "同じ文字の繰り返しはパスワードに使えません", "password must not repeat a single character"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = PasswordHasher::new(64, 1);
        let phc = h.hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse battery", &phc));
        assert!(!h.verify("wrong", &phc));
        assert!(!h.verify("x", "not a phc string"));
    }

    #[test]
    fn policy() {
        assert!(check_password_policy("short", "u", 12).is_err());
        assert!(check_password_policy("aaaaaaaaaaaaaa", "u", 12).is_err());
        assert!(check_password_policy("xx-tanaka-xx-123", "tanaka", 12).is_err());
        assert!(check_password_policy("桜の花が咲く季節になりました", "tanaka", 12).is_ok());
    }
}
