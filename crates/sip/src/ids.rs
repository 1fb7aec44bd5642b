//! Fresh identifiers: tags, branches and Call-IDs. Random enough that two
//! never collide across the life of a platform (RFC 3261 §19.3 asks for at
//! least 32 bits of randomness; these carry 64 or more).

/// 64 random bits, for keys and secrets the caller derives itself.
pub fn random_u64() -> u64 {
    rand::random::<u64>()
}

/// A From/To tag.
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A Via branch with the RFC 3261 magic cookie.
pub fn new_branch() -> String {
    format!("z9hG4bK{:016x}", rand::random::<u64>())
}

/// A Call-ID, qualified by the host that made it.
pub fn new_call_id(host: &str) -> String {
    let (a, b) = (rand::random::<u64>(), rand::random::<u32>());
    format!("{a:016x}{b:08x}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_well_formed() {
        let a = new_branch();
        assert!(a.starts_with("z9hG4bK") && a.len() == 23);
        assert_ne!(new_branch(), a);
        assert_ne!(new_tag(), new_tag());
        assert!(new_call_id("example.com").ends_with("@example.com"));
    }
}
