use serde_json::json;

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn mask() -> GuardAction {
    GuardAction::Mask {
        with: "[x]".to_owned(),
    }
}

fn kw_guard(keywords: &[&str], action: GuardAction) -> Guard {
    Guard::new(&strings(keywords), &[], action, 0).unwrap()
}

fn blocked(rule: &str) -> Blocked {
    Blocked {
        rule: rule.to_owned(),
    }
}

/// Streams `pieces` through a fresh checker; the emitted text, or the error.
fn stream(g: &Guard, pieces: &[&str]) -> Result<String, (Blocked, String)> {
    let mut s = g.stream();
    let mut out = String::new();
    for p in pieces {
        match s.push(p) {
            Ok(o) => out.push_str(&o),
            Err(e) => return Err((e, out)),
        }
        assert!(
            s.withheld_chars() <= g.hold_back(),
            "withheld {} > {}",
            s.withheld_chars(),
            g.hold_back()
        );
    }
    match s.finish() {
        Ok(o) => out.push_str(&o),
        Err(e) => return Err((e, out)),
    }
    Ok(out)
}

/// Char-boundary byte offsets of `text`, 0 and len included.
fn boundaries(text: &str) -> Vec<usize> {
    text.char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(text.len()))
        .collect()
}

/// `text` cut at the given ascending byte offsets.
fn cut<'a>(text: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut pieces = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&text.len())) {
        pieces.push(&text[from..c]);
        from = c;
    }
    pieces
}

struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % below
    }
}

#[test]
fn bad_rules_are_errors_naming_the_rule() {
    let e = Guard::new(&[], &strings(&["ok", "(unclosed"]), GuardAction::Block, 0).unwrap_err();
    assert!(e.starts_with("guard pattern `(unclosed`"), "{e}");
    let e = Guard::new(&strings(&["a", ""]), &[], GuardAction::Block, 0).unwrap_err();
    assert_eq!(e, "guard keyword #2 is empty");
    for p in ["a*", "", "x?", r"\b", "(?m)^"] {
        let e = Guard::new(&[], &strings(&[p]), GuardAction::Block, 0).unwrap_err();
        assert_eq!(e, format!("guard pattern `{p}` can match empty text"));
    }
}

#[test]
fn hold_back_is_at_least_the_longest_keyword() {
    let g = kw_guard(&["ab", "naïveté"], GuardAction::Block);
    assert_eq!(g.hold_back(), 7);
    let g = Guard::new(&strings(&["ab"]), &[], GuardAction::Block, 32).unwrap();
    assert_eq!(g.hold_back(), 32);
}

#[test]
fn block_whole_text() {
    let g = Guard::new(
        &strings(&["secret", "BadWord"]),
        &strings(&[r"sk-[A-Za-z0-9]{8,}"]),
        GuardAction::Block,
        0,
    )
    .unwrap();
    assert!(matches!(g.check("all good"), Ok(Cow::Borrowed("all good"))));
    assert_eq!(g.check("a badword here"), Err(blocked("keyword #2")));
    assert_eq!(g.check("TOP SECRET"), Err(blocked("keyword #1")));
    assert_eq!(
        g.check("key sk-abcdEFGH1234"),
        Err(blocked("pattern `sk-[A-Za-z0-9]{8,}`"))
    );
    // Patterns are case-sensitive unless they say otherwise.
    assert!(g.check("key SK-abcdEFGH1234").is_ok());
    assert_eq!(
        blocked("keyword #1").to_string(),
        "content blocked by guard rule keyword #1"
    );
}

#[test]
fn block_reports_the_rule_that_matched_first() {
    let g = Guard::new(
        &strings(&["beta", "alphabet"]),
        &strings(&["al+pha"]),
        GuardAction::Block,
        0,
    )
    .unwrap();
    assert_eq!(g.check("x alphabet"), Err(blocked("keyword #2")));
    assert_eq!(g.check("x allpha"), Err(blocked("pattern `al+pha`")));
    assert_eq!(g.check("betamax alphabet"), Err(blocked("keyword #1")));
}

#[test]
fn mask_whole_text() {
    let g = Guard::new(
        &strings(&["bad", "badword"]),
        &strings(&[r"\d{3}-\d{4}"]),
        mask(),
        0,
    )
    .unwrap();
    assert_eq!(
        g.check("a BAD badword, call 555-1234 now").unwrap(),
        "a [x] [x], call [x] now"
    );
    assert!(matches!(g.check("fine"), Ok(Cow::Borrowed("fine"))));
    assert_eq!(g.check("badbad").unwrap(), "[x][x]");
}

#[test]
fn unicode_case_insensitive_keywords() {
    let g = kw_guard(&["école", "σοφία", "kelvin"], mask());
    assert_eq!(g.check("une ÉCOLE ici").unwrap(), "une [x] ici");
    assert_eq!(g.check("ΣΟΦΊΑ!").unwrap(), "[x]!");
    // U+212A KELVIN SIGN folds to k.
    assert_eq!(g.check("\u{212A}ELVIN").unwrap(), "[x]");
    assert_eq!(g.check("ecole").unwrap(), "ecole");
}

#[test]
fn keyword_metacharacters_are_literal() {
    let g = kw_guard(&["a.b", "(x)"], mask());
    assert_eq!(g.check("axb a.b (x) x").unwrap(), "axb [x] [x] x");
}

#[test]
fn no_rules_pass_everything() {
    let g = Guard::new(&[], &[], GuardAction::Block, 10).unwrap();
    assert!(g.check("anything").is_ok());
    let mut body = json!({"messages":[{"role":"user","content":"anything"}]});
    assert_eq!(g.check_request(&mut body), Ok(false));
    assert_eq!(stream(&g, &["any", "thing"]), Ok("anything".to_owned()));
}

#[test]
fn request_openai_chat() {
    let g = kw_guard(&["secret"], mask());
    let mut body = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "keep the SECRET"},
            {"role": "user", "content": [
                {"type": "text", "text": "my secret is"},
                {"type": "image_url", "image_url": {"url": "https://x/secret.png"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": "{\"secret\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "1", "content": "secret result"}
        ],
        "metadata": {"note": "secret"}
    });
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(
        body,
        json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "keep the [x]"},
                {"role": "user", "content": [
                    {"type": "text", "text": "my [x] is"},
                    {"type": "image_url", "image_url": {"url": "https://x/secret.png"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"type": "function", "function": {"name": "f", "arguments": "{\"secret\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "1", "content": "[x] result"}
            ],
            "metadata": {"note": "secret"}
        })
    );

    let b = kw_guard(&["secret"], GuardAction::Block);
    let mut body =
        json!({"messages":[{"role":"user","content":[{"type":"text","text":"a Secret"}]}]});
    assert_eq!(b.check_request(&mut body), Err(blocked("keyword #1")));
}

#[test]
fn request_unchanged_when_clean() {
    let g = kw_guard(&["secret"], mask());
    let original = json!({"messages":[{"role":"user","content":"hello"}],"system":"be nice"});
    let mut body = original.clone();
    assert_eq!(g.check_request(&mut body), Ok(false));
    assert_eq!(body, original);
    let mut not_object = json!(["secret"]);
    assert_eq!(g.check_request(&mut not_object), Ok(false));
}

#[test]
fn request_anthropic_messages() {
    let g = kw_guard(&["secret"], mask());
    let mut body = json!({
        "model": "claude",
        "system": [{"type": "text", "text": "secret system", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "a secret"},
                {"type": "tool_result", "tool_use_id": "t", "content": [
                    {"type": "text", "text": "secret out"}
                ]},
                {"type": "tool_result", "tool_use_id": "u", "content": "secret too"}
            ]}
        ]
    });
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["system"][0]["text"], "[x] system");
    assert_eq!(body["system"][0]["cache_control"]["type"], "ephemeral");
    assert_eq!(body["messages"][0]["content"][0]["text"], "a [x]");
    assert_eq!(
        body["messages"][0]["content"][1]["content"][0]["text"],
        "[x] out"
    );
    assert_eq!(body["messages"][0]["content"][2]["content"], "[x] too");

    let mut body = json!({"system": "the secret", "messages": []});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["system"], "the [x]");
}

#[test]
fn request_completions_prompt() {
    let g = kw_guard(&["secret"], mask());
    let mut body = json!({"model": "m", "prompt": "tell the secret"});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["prompt"], "tell the [x]");
    let mut body = json!({"prompt": ["ok", "secret", [1, 2, 3]]});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["prompt"], json!(["ok", "[x]", [1, 2, 3]]));
}

#[test]
fn request_responses_and_embeddings_input() {
    let g = kw_guard(&["secret"], mask());
    let mut body = json!({"model": "m", "input": "secret", "instructions": "no secret"});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["input"], "[x]");
    assert_eq!(body["instructions"], "no [x]");

    let mut body = json!({"input": [
        {"role": "user", "content": "secret one"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "secret two"},
            {"type": "input_image", "image_url": "secret.png"}
        ]},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "secret three"}
        ]},
        {"type": "input_text", "text": "secret four"},
        {"type": "function_call", "arguments": "secret"}
    ]});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["input"][0]["content"], "[x] one");
    assert_eq!(body["input"][1]["content"][0]["text"], "[x] two");
    assert_eq!(body["input"][1]["content"][1]["image_url"], "secret.png");
    assert_eq!(body["input"][2]["content"][0]["text"], "[x] three");
    assert_eq!(body["input"][3]["text"], "[x] four");
    assert_eq!(body["input"][4]["arguments"], "secret");

    let mut body = json!({"model": "emb", "input": ["fine", "secret"]});
    assert_eq!(g.check_request(&mut body), Ok(true));
    assert_eq!(body["input"], json!(["fine", "[x]"]));

    let b = kw_guard(&["secret"], GuardAction::Block);
    let mut body = json!({"input": [{"role": "user", "content": "SECRET"}]});
    assert_eq!(b.check_request(&mut body), Err(blocked("keyword #1")));
}

#[test]
fn stream_keyword_split_at_every_position_mask() {
    let g = kw_guard(&["badword"], mask());
    let text = "this is a badword, BadWord again and bad words";
    let want = g.check(text).unwrap().into_owned();
    assert_eq!(want, "this is a [x], [x] again and bad words");
    let b = boundaries(text);
    for &i in &b {
        for &j in b.iter().filter(|&&j| j >= i) {
            let out = stream(&g, &cut(text, &[i, j])).unwrap();
            assert_eq!(out, want, "cuts {i} {j}");
        }
    }
}

#[test]
fn stream_keyword_split_in_two_deltas() {
    let g = kw_guard(&["badword"], mask());
    let mut s = g.stream();
    let a = s.push("say bad").unwrap();
    assert_eq!(a, "say ");
    let b = s.push("word now").unwrap();
    assert_eq!(b, "[x] now");
    assert_eq!(s.finish().unwrap(), "");

    let g = kw_guard(&["badword"], GuardAction::Block);
    let mut s = g.stream();
    assert_eq!(s.push("say bad").unwrap(), "say ");
    assert_eq!(s.push("word"), Err(blocked("keyword #1")));
}

#[test]
fn stream_keyword_block_at_every_position() {
    let g = kw_guard(&["badword"], GuardAction::Block);
    let text = "clean text then BADword and more";
    let at = text.to_lowercase().find("badword").unwrap();
    for i in 0..=text.len() {
        for j in i..=text.len() {
            let (err, emitted) = stream(&g, &cut(text, &[i, j])).unwrap_err();
            assert_eq!(err, blocked("keyword #1"));
            // Nothing of the keyword was released before blocking.
            assert!(emitted.len() <= at, "cuts {i} {j}: {emitted:?}");
            assert!(text.starts_with(&emitted));
        }
    }
    assert_eq!(stream(&g, &["clean ", "text"]), Ok("clean text".to_owned()));
}

#[test]
fn stream_one_char_at_a_time_multibyte() {
    let g = kw_guard(&["日本語", "naïve"], mask());
    let text = "héllo 日本語 and NAÏVE, 日本 and naïv";
    let pieces: Vec<&str> = {
        let b = boundaries(text);
        b.windows(2).map(|w| &text[w[0]..w[1]]).collect()
    };
    let out = stream(&g, &pieces).unwrap();
    assert_eq!(out, "héllo [x] and [x], 日本 and naïv");
    assert_eq!(out, g.check(text).unwrap());
}

#[test]
fn stream_releases_text_that_cannot_start_a_keyword() {
    let g = kw_guard(&["badword"], mask());
    let mut s = g.stream();
    assert_eq!(s.push("hello ").unwrap(), "hello ");
    assert_eq!(s.withheld_chars(), 0);
    assert_eq!(s.push("there b").unwrap(), "there ");
    assert_eq!(s.withheld_chars(), 1);
    assert_eq!(s.push("A").unwrap(), "");
    assert_eq!(s.push("n").unwrap(), "bAn");
    assert_eq!(s.finish().unwrap(), "");
}

#[test]
fn stream_overlapping_keywords_match_whole_text_semantics() {
    let g = kw_guard(&["abcdef", "cd", "bad", "badword", "e f"], mask());
    let texts = [
        "xx abcdef yy abcde cd badwor badword e f",
        "abcdabcdefbadbadwordbad",
        "ABCDEcdbadwORd",
    ];
    let mut rng = Lcg(11);
    for text in texts {
        let want = g.check(text).unwrap().into_owned();
        let b = boundaries(text);
        for _ in 0..400 {
            let mut cuts: Vec<usize> = (0..rng.next(10)).map(|_| b[rng.next(b.len())]).collect();
            cuts.sort_unstable();
            assert_eq!(
                stream(&g, &cut(text, &cuts)).unwrap(),
                want,
                "{text:?} {cuts:?}"
            );
        }
        let singles: Vec<usize> = b[1..b.len() - 1].to_vec();
        assert_eq!(stream(&g, &cut(text, &singles)).unwrap(), want);
    }
}

#[test]
fn stream_mask_never_emits_a_keyword() {
    let keywords = ["password", "pass", "word"];
    let g = kw_guard(&keywords, mask());
    let text = "my PassWord is passpassword and swordfish";
    let mut rng = Lcg(3);
    for _ in 0..300 {
        let mut cuts: Vec<usize> = (0..rng.next(12))
            .map(|_| rng.next(text.len() + 1))
            .collect();
        cuts.sort_unstable();
        let out = stream(&g, &cut(text, &cuts)).unwrap();
        let lower = out.to_lowercase();
        for k in keywords {
            assert!(!lower.contains(k), "{out:?} contains {k}");
        }
        assert_eq!(out, g.check(text).unwrap());
    }
}

#[test]
fn stream_patterns_within_hold_back() {
    let g = Guard::new(&[], &strings(&[r"sk-[a-z0-9]{8}"]), mask(), 16).unwrap();
    let text = "key sk-abc12345 then sk-zz and sk-00000000!";
    let want = g.check(text).unwrap().into_owned();
    assert_eq!(want, "key [x] then sk-zz and [x]!");
    for i in 0..=text.len() {
        for j in i..=text.len() {
            assert_eq!(
                stream(&g, &cut(text, &[i, j])).unwrap(),
                want,
                "cuts {i} {j}"
            );
        }
    }
    // The last hold_back chars are withheld, no more.
    let mut s = g.stream();
    let out = s.push(&"a".repeat(40)).unwrap();
    assert_eq!(out.len(), 24);
    assert_eq!(s.withheld_chars(), 16);
}

#[test]
fn stream_pattern_block_is_immediate_when_settled() {
    let g = Guard::new(&[], &strings(&[r"\d{4}"]), GuardAction::Block, 10).unwrap();
    let mut s = g.stream();
    assert_eq!(s.push("id 12").unwrap(), "");
    // "1234" is followed by more text: blocked without waiting for it to leave the tail.
    assert_eq!(s.push("34 x"), Err(blocked(r"pattern `\d{4}`")));
    let mut s = g.stream();
    assert_eq!(s.push("id 1234").unwrap(), "");
    assert_eq!(s.finish(), Err(blocked(r"pattern `\d{4}`")));
}

#[test]
fn stream_pattern_longer_than_hold_back_is_cut_at_the_limit() {
    // The documented limit: a match may only span hold_back chars across deltas.
    let g = Guard::new(&[], &strings(&[r"x+"]), mask(), 4).unwrap();
    assert_eq!(g.check("axxxxxxxxb").unwrap(), "a[x]b");
    let out = stream(&g, &["ax", "xxxxxxx", "xb"]).unwrap();
    assert_ne!(out, "a[x]b");
    assert!(!out.contains("xxxxx"), "{out}");
}

#[test]
fn stream_assertions_see_real_neighbours() {
    let g = Guard::new(&[], &strings(&[r"\bcat\b"]), mask(), 3).unwrap();
    // "cat" followed by "s" is not a whole word.
    assert_eq!(stream(&g, &["the cat", "s sat"]).unwrap(), "the cats sat");
    assert_eq!(stream(&g, &["the cat", " sat"]).unwrap(), "the [x] sat");
    // "cat" preceded by released text "tom" is not a whole word either.
    assert_eq!(stream(&g, &["tom", "cat"]).unwrap(), "tomcat");
    assert_eq!(stream(&g, &["tom ", "cat"]).unwrap(), "tom [x]");

    let g = Guard::new(&[], &strings(&[r"^secret", r"end$"]), mask(), 6).unwrap();
    assert_eq!(stream(&g, &["secret sec", "ret"]).unwrap(), "[x] secret");
    assert_eq!(
        stream(&g, &["the end", " is near"]).unwrap(),
        "the end is near"
    );
    assert_eq!(stream(&g, &["the e", "nd"]).unwrap(), "the [x]");
}

#[test]
fn stream_keywords_and_patterns_together() {
    let g = Guard::new(
        &strings(&["forbidden"]),
        &strings(&[r"[0-9]{3}-[0-9]{2}-[0-9]{4}"]),
        mask(),
        12,
    )
    .unwrap();
    let text = "ssn 123-45-6789 is forbidden, 12-34 isn't";
    let want = g.check(text).unwrap().into_owned();
    assert_eq!(want, "ssn [x] is [x], 12-34 isn't");
    let b = boundaries(text);
    for &i in &b {
        for &j in b.iter().filter(|&&j| j >= i) {
            assert_eq!(
                stream(&g, &cut(text, &[i, j])).unwrap(),
                want,
                "cuts {i} {j}"
            );
        }
    }
}

#[test]
fn stream_multibyte_hold_back_counts_chars() {
    let g = Guard::new(&[], &strings(&["秘密"]), mask(), 3).unwrap();
    let mut s = g.stream();
    let out = s.push("これは秘").unwrap();
    assert_eq!(out, "こ");
    assert_eq!(s.withheld_chars(), 3);
    let out2 = s.push("密です").unwrap();
    assert_eq!(out2, "れは[x]");
    assert_eq!(s.finish().unwrap(), "です");
}

#[test]
fn stream_finish_masks_a_final_match_and_resets() {
    let g = kw_guard(&["end"], mask());
    let mut s = g.stream();
    assert_eq!(s.push("the e").unwrap(), "the ");
    assert_eq!(s.push("nd").unwrap(), "");
    assert_eq!(s.finish().unwrap(), "[x]");
    assert_eq!(s.withheld_chars(), 0);
    assert_eq!(s.push("fun").unwrap(), "fun");
    assert_eq!(s.finish().unwrap(), "");
}
