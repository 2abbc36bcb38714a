//! Skipping over JSON without building it: the few primitives the hot-path scanners of model
//! requests (`request.rs`) and answers (`usage.rs`) share. They check structure only as far as
//! they need to find their way; serde stays the judge of validity on the slow paths.

/// The index of the first non-whitespace byte at or after `i`.
pub fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// `i + 1` when the byte at `i` is `c`.
pub fn expect(b: &[u8], i: usize, c: u8) -> Option<usize> {
    (b.get(i) == Some(&c)).then_some(i + 1)
}

/// The index after the string token starting at `i`.
pub fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    let mut j = expect(b, i, b'"')?;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', b.get(j..)?)?;
        if b[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// The index after the value starting at `i`: a string, an object or array (by depth), or a
/// scalar token.
pub fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let (mut depth, mut j) = (0usize, i);
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || b"+-.".contains(c)))
                .unwrap_or(b.len() - i);
            (n > 0).then_some(i + n)
        }
    }
}

/// A string token without escapes at `i`: its contents and the index after it.
pub fn plain_string(b: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let end = skip_string(b, i)?;
    let inner = &b[i + 1..end - 1];
    (!inner.contains(&b'\\')).then_some((inner, end))
}

/// Walks the members of the object whose `{` is at `i`, calling `member(key, value_start)`
/// for each; it returns where the value ends, or `None` to give up. Keys with escapes give
/// up too. Returns the index after the closing `}`.
pub fn members(
    b: &[u8],
    i: usize,
    mut member: impl FnMut(&[u8], usize) -> Option<usize>,
) -> Option<usize> {
    let mut i = skip_ws(b, expect(b, i, b'{')?);
    if b.get(i) == Some(&b'}') {
        return Some(i + 1);
    }
    loop {
        let (key, after_key) = plain_string(b, skip_ws(b, i))?;
        let start = skip_ws(b, expect(b, skip_ws(b, after_key), b':')?);
        i = skip_ws(b, member(key, start)?);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Some(i + 1),
            _ => return None,
        }
    }
}
