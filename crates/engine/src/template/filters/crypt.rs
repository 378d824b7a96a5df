//! `password_hash('sha512', salt, rounds=5000)`: SHA-512 crypt (`$6$`), the format
//! `/etc/shadow` and the `user` module take. Implemented from Drepper's specification
//! (what glibc's `crypt` and Ansible's fallback use); only `sha512` is supported.

use minijinja::value::Kwargs;
use minijinja::{Error, Value};
use rand::Rng as _;
use sha2::{Digest, Sha512};

use super::invalid;

const ITOA64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DEFAULT_ROUNDS: u32 = 5000;

/// The filter: `password | password_hash('sha512'[, salt][, rounds=N])`.
pub fn password_hash(
    password: String,
    scheme: Option<String>,
    salt: Option<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let rounds = kwargs
        .get::<Option<u32>>("rounds")?
        .unwrap_or(DEFAULT_ROUNDS);
    let salt = match salt.filter(|s| !s.is_none()) {
        Some(s) => Some(s.to_string()),
        None => kwargs.get::<Option<String>>("salt")?,
    };
    kwargs.assert_all_used()?;
    match scheme.as_deref().unwrap_or("sha512") {
        "sha512" | "sha512_crypt" => {}
        other => {
            return Err(invalid(format!(
                "password_hash: scheme {other:?} is not supported (use sha512)"
            )));
        }
    }
    let salt = salt.unwrap_or_else(|| {
        let mut rng = rand::rng();
        (0..16)
            .map(|_| ITOA64[rng.random_range(0..ITOA64.len())] as char)
            .collect()
    });
    if salt.contains('$') || salt.contains(':') {
        return Err(invalid(
            "password_hash: the salt may not contain '$' or ':'",
        ));
    }
    Ok(sha512_crypt(
        password.as_bytes(),
        &salt,
        rounds.clamp(1000, 999_999_999),
    ))
}

/// SHA-512 crypt of `password` with `salt` (first 16 bytes used) and `rounds`.
pub fn sha512_crypt(password: &[u8], salt: &str, rounds: u32) -> String {
    let salt = &salt.as_bytes()[..salt.len().min(16)];
    let p = password;
    let b = Sha512::new()
        .chain_update(p)
        .chain_update(salt)
        .chain_update(p)
        .finalize();
    let mut a = Sha512::new().chain_update(p).chain_update(salt);
    let mut n = p.len();
    while n > 64 {
        a.update(b);
        n -= 64;
    }
    a.update(&b[..n]);
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let a = a.finalize();
    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_seq = repeat_to(&dp.finalize(), p.len());
    let mut ds = Sha512::new();
    for _ in 0..(16 + a[0] as usize) {
        ds.update(salt);
    }
    let s_seq = repeat_to(&ds.finalize(), salt.len());
    let mut c = a.to_vec();
    for i in 0..rounds {
        let mut h = Sha512::new();
        if i % 2 == 1 {
            h.update(&p_seq);
        } else {
            h.update(&c);
        }
        if i % 3 != 0 {
            h.update(&s_seq);
        }
        if i % 7 != 0 {
            h.update(&p_seq);
        }
        if i % 2 == 1 {
            h.update(&c);
        } else {
            h.update(&p_seq);
        }
        c = h.finalize().to_vec();
    }
    const ORDER: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    let mut out = String::from("$6$");
    if rounds != DEFAULT_ROUNDS {
        out.push_str(&format!("rounds={rounds}$"));
    }
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for (x, y, z) in ORDER {
        encode(&mut out, c[x], c[y], c[z], 4);
    }
    encode(&mut out, 0, 0, c[63], 2);
    out
}

fn repeat_to(digest: &[u8], len: usize) -> Vec<u8> {
    digest.iter().copied().cycle().take(len).collect()
}

fn encode(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = ((b2 as u32) << 16) | ((b1 as u32) << 8) | b0 as u32;
    for _ in 0..n {
        out.push(ITOA64[(w & 0x3f) as usize] as char);
        w >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_vectors() {
        // From Drepper's "Unix crypt using SHA-256 and SHA-512", test vectors 1 and 2.
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstring", 5000),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        assert_eq!(
            sha512_crypt(b"Hello world!", "saltstringsaltstring", 10000),
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
        );
    }
}
