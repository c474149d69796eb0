//! Codec throughput: pgdap's PostgreSQL-exact codecs against encoding_rs (and, for UTF8,
//! against std's copy-and-validate), on generated text.
//!
//! ```text
//! cargo bench --bench codecs                    # 4 MiB per text, 9 rounds
//! MB=4 ROUNDS=5 ONLY=GBK,WIN1252 cargo bench --bench codecs
//! ```
//!
//! For every encoding both implement, two texts: the script's own (CJK for GBK/SJIS/UHC,
//! Russian for the Cyrillic encodings, French for the Western ones, generated words of the
//! encoding's letters for the others) and ASCII-only English. Each case is converted in
//! both directions by pgdap and by encoding_rs, **interleaved**: in every round both run
//! once, in alternating order, so the load of the shared machine falls on both alike.
//! Times are the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so time slices the shared
//! machine gives to other processes are not counted. Reported: MB/s of input (median over rounds) and the median of the per-round time ratios
//! pgdap / encoding_rs (below 1 means pgdap is faster). Both produce owned results, as
//! pgdap's API does (`String`/`Vec<u8>`): encoding_rs's `Cow` is made owned, which for
//! all-ASCII input (borrowed by encoding_rs) is a copy. A case is only compared when both
//! produce identical bytes; otherwise it is listed as differing (WHATWG ≠ PostgreSQL).
//!
//! Output: a markdown table on stdout, one JSON object per case on stderr.

use pgdap::encoding::ClientEncoding;

/// A deterministic generator (xorshift64*), so every run converts the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ENGLISH: &str = "the of and to in is was that for it with as his on be at by had \
    are but from or have an they which one you were her all she there would their we him \
    been has when who will more no if out so said what up its about into than them can \
    only other new some could time these two may then do first any my now such like our \
    over man me even most made after also did many before must through back years where \
    much your way well down should because each just those people how too little state \
    good very make world still own see men work long get here between both life being \
    under never day same another know while last might us great old year off come since \
    against go came right used take three database server connection certificate query";

const FRENCH: &str = "le la les de des du un une et est été être à où déjà très café \
    élève français garçon hôtel forêt noël naïve côté après première année réponse \
    république général système société développement également là ça voilà même \
    problème précédent privilège gérer créer éléments données clé accès sécurité serveur \
    connexion certificat requête mère père frère sœur cœur fenêtre tête fête \
    bientôt peut-être qu'il c'est n'est pas pour dans par sur avec plus tout nous vous \
    ils elles mais comme aussi bien encore toujours jamais rien personne chose temps \
    jour monde vie homme femme enfant maison ville pays travail question histoire école";

const RUSSIAN: &str = "и в не на я что тот быть с а весь это как она по но они к у ты из \
    мы за вы так же от сказать этот который мочь человек о один еще бы такой только себя \
    свое какой когда уже для вот кто да говорить год знать мой до или если время рука нет \
    самый ни стать большой даже другой наш свой ну под где дело есть сам раз чтобы два там \
    чем глаз жизнь первый день ничто потом очень со хотеть ли при голова надо без видеть \
    идти теперь тоже стоять друг дом сейчас можно после слово здесь думать место спросить \
    через лицо тогда ведь хороший каждый новый жить должный смотреть почему потому сторона \
    просто нога сидеть понять иметь делать вдруг над взять никто сделать дверь перед нужный \
    понимать казаться работа три ваш земля конец несколько час голос город последний пока \
    хорошо давать вода более хотя всегда второй куда пойти стол ребенок увидеть сила отец \
    женщина машина случай ночь сразу мир совсем остаться база данных сервер соединение";

const CHINESE: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主\
    发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起\
    小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表\
    间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情\
    者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图\
    山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研数据库服务器";

const JAPANESE: &str = "日本 東京 大阪 私 あなた です ます した する こと もの ため これ \
    それ あれ ここ そこ 会社 学校 先生 学生 時間 今日 明日 昨日 電話 新聞 ニュース コンピュータ \
    データベース サーバー テスト 接続 暗号 証明書 ありがとう ございます よろしく お願い します \
    食べる 飲む 見る 行く 来る 話す 読む 書く 聞く 買う は が を に で と の も 、 。 言葉 世界 \
    経済 政治 社会 文化 歴史 問題 情報 技術 開発 管理 設定 変更 確認 表示 入力 出力 検索";

const KOREAN: &str = "안녕하세요 감사합니다 데이터베이스 서버 연결 한국 서울 사람 학교 회사 \
    시간 오늘 내일 어제 전화 신문 컴퓨터 프로그램 사용자 비밀번호 인증서 암호화 이 그 저 것 수 \
    있다 없다 하다 되다 보다 말하다 생각 때문 그리고 하지만 그래서 우리 나라 세계 경제 정치 사회 \
    문화 역사 문제 정보 기술 개발 관리 설정 변경 확인 표시 입력 출력 검색 은 는 이 가 을 를 에 \
    에서 와 과 의 도.";

/// Text of about `size` bytes (UTF-8) made of words drawn from `pool`, separated as the
/// script separates them (`joined`: CJK without spaces), with sentence punctuation.
fn words_text(pool: &str, size: usize, seed: u64, joined: bool) -> String {
    let words: Vec<&str> = pool.split_whitespace().collect();
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 64);
    let mut in_sentence = 0;
    while out.len() < size {
        if joined {
            // Chinese: 1-3 characters per "word", punctuation every few words.
            let chars: Vec<char> = pool.chars().filter(|c| !c.is_whitespace()).collect();
            for _ in 0..1 + rng.below(3) {
                out.push(chars[rng.below(chars.len())]);
            }
            in_sentence += 1;
            if in_sentence > 6 + rng.below(10) {
                out.push_str(if rng.below(3) == 0 { "。" } else { "，" });
                in_sentence = 0;
            }
            continue;
        }
        out.push_str(words[rng.below(words.len())]);
        in_sentence += 1;
        if in_sentence > 8 + rng.below(12) {
            out.push_str(if rng.below(4) == 0 { ",\n" } else { ". " });
            in_sentence = 0;
        } else {
            out.push(' ');
        }
    }
    out
}

/// Words of the encoding's own letters (those both codecs map identically), for the
/// encodings without a word list here: `mix` of the letters are non-ASCII (Latin-script
/// encodings mix ASCII letters in, other scripts do not).
fn letters_text(enc: ClientEncoding, er: &'static encoding_rs::Encoding, size: usize) -> String {
    let mut letters = Vec::new();
    for b in 0x80u8..=0xff {
        let Ok(s) = enc.decode(&[b]) else { continue };
        let byte = [b];
        let Some(theirs) = er.decode_without_bom_handling_and_without_replacement(&byte) else {
            continue;
        };
        let ch = s.chars().next().unwrap_or(' ');
        if s == theirs && ch.is_alphabetic() {
            letters.push(ch);
        }
    }
    let latin = letters
        .iter()
        .filter(|c| c.is_ascii() || (**c as u32) < 0x250)
        .count()
        > letters.len() / 2;
    let mut rng = Rng(0x5eed ^ enc.name().len() as u64);
    let mut out = String::with_capacity(size + 64);
    while out.len() < size {
        for _ in 0..2 + rng.below(8) {
            if latin && rng.below(100) >= 15 {
                out.push(char::from(b'a' + rng.below(26) as u8));
            } else {
                out.push(letters[rng.below(letters.len())]);
            }
        }
        out.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    out
}

/// encoding_rs's counterpart of each encoding, where it has one (WHATWG names; the bench
/// compares only cases where the bytes are identical).
fn peer(enc: ClientEncoding) -> Option<&'static encoding_rs::Encoding> {
    use ClientEncoding as E;
    Some(match enc {
        E::Gbk => encoding_rs::GBK,
        E::Sjis => encoding_rs::SHIFT_JIS,
        E::Uhc => encoding_rs::EUC_KR,
        E::Latin1 => encoding_rs::WINDOWS_1252, // WHATWG iso-8859-1: equal on 0xA0-0xFF
        E::Latin2 => encoding_rs::ISO_8859_2,
        E::Latin3 => encoding_rs::ISO_8859_3,
        E::Latin4 => encoding_rs::ISO_8859_4,
        E::Latin5 => encoding_rs::WINDOWS_1254, // WHATWG iso-8859-9: equal on 0xA0-0xFF
        E::Latin6 => encoding_rs::ISO_8859_10,
        E::Latin7 => encoding_rs::ISO_8859_13,
        E::Latin8 => encoding_rs::ISO_8859_14,
        E::Latin9 => encoding_rs::ISO_8859_15,
        E::Latin10 => encoding_rs::ISO_8859_16,
        E::Iso8859_5 => encoding_rs::ISO_8859_5,
        E::Iso8859_6 => encoding_rs::ISO_8859_6,
        E::Iso8859_7 => encoding_rs::ISO_8859_7,
        E::Iso8859_8 => encoding_rs::ISO_8859_8,
        E::Win866 => encoding_rs::IBM866,
        E::Win874 => encoding_rs::WINDOWS_874,
        E::Win1250 => encoding_rs::WINDOWS_1250,
        E::Win1251 => encoding_rs::WINDOWS_1251,
        E::Win1252 => encoding_rs::WINDOWS_1252,
        E::Win1256 => encoding_rs::WINDOWS_1256,
        E::Win1258 => encoding_rs::WINDOWS_1258,
        _ => return None,
    })
}

/// The native text of an encoding, and what to call it.
fn native_text(
    enc: ClientEncoding,
    er: &'static encoding_rs::Encoding,
    size: usize,
) -> (String, String) {
    use ClientEncoding as E;
    match enc {
        E::Gbk => (words_text(CHINESE, size, 1, true), "Chinese".into()),
        E::Sjis => (
            words_text(JAPANESE, size, 2, false).replace(' ', ""),
            "Japanese".into(),
        ),
        E::Uhc => (words_text(KOREAN, size, 3, false), "Korean".into()),
        E::Iso8859_5 | E::Win866 | E::Win1251 => {
            (words_text(RUSSIAN, size, 4, false), "Russian".into())
        }
        E::Latin1 | E::Latin9 | E::Win1252 => {
            let pool = if enc == E::Latin1 {
                FRENCH.replace("sœur", "sur").replace("cœur", "coeur")
            } else {
                FRENCH.to_string()
            };
            (words_text(&pool, size, 5, false), "French".into())
        }
        _ => (letters_text(enc, er, size), "letters".into()),
    }
}

/// The calling thread's CPU time in seconds (`CLOCK_THREAD_CPUTIME_ID`): time slices the
/// shared machine gives to other processes are not counted, unlike wall-clock time.
fn thread_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn time<T>(f: impl FnOnce() -> T) -> f64 {
    let start = thread_cpu_seconds();
    let out = f();
    let elapsed = thread_cpu_seconds() - start;
    drop(std::hint::black_box(out));
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Case {
    encoding: String,
    text: String,
    direction: &'static str,
    input_len: usize,
    identical: bool,
    ours: Vec<f64>,
    theirs: Vec<f64>,
}

impl Case {
    fn report(&self) -> (f64, f64, f64) {
        let mbs = |t: &[f64]| self.input_len as f64 / 1e6 / median(t.to_vec());
        let ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.theirs)
            .map(|(a, b)| a / b)
            .collect();
        (mbs(&self.ours), mbs(&self.theirs), median(ratios))
    }
}

/// Runs `ours` and `theirs` `rounds` times each, alternating which goes first.
fn interleave<A, B>(
    rounds: usize,
    mut ours: impl FnMut() -> A,
    mut theirs: impl FnMut() -> B,
) -> (Vec<f64>, Vec<f64>) {
    // One warm-up each (tables, page faults of the first output buffers).
    drop(std::hint::black_box(ours()));
    drop(std::hint::black_box(theirs()));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        if r % 2 == 0 {
            a.push(time(&mut ours));
            b.push(time(&mut theirs));
        } else {
            b.push(time(&mut theirs));
            a.push(time(&mut ours));
        }
    }
    (a, b)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it,
    // as a smoke test: every case once on 64 KiB of text (a debug build would take many
    // minutes on the full size).
    let measuring = std::env::args().any(|a| a == "--bench");
    let mb: usize = std::env::var("MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 9 } else { 1 });
    let only: Option<Vec<String>> = std::env::var("ONLY")
        .ok()
        .map(|v| v.split(',').map(|s| s.trim().to_uppercase()).collect());
    let size = if measuring { mb << 20 } else { 64 << 10 };
    let ascii = words_text(ENGLISH, size, 6, false);
    let mut cases = Vec::new();

    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == name));

    // UTF8 against std: decode = from_utf8 + to_owned, encode = NUL check + copy.
    if wanted("UTF8") {
        for (label, text) in [
            (
                "mixed (Russian, French, CJK)",
                format!(
                    "{}{}{}",
                    words_text(RUSSIAN, size / 3, 7, false),
                    words_text(FRENCH, size / 3, 8, false),
                    words_text(CHINESE, size / 3, 9, true)
                ),
            ),
            ("ASCII", ascii.clone()),
        ] {
            let bytes = text.as_bytes().to_vec();
            let enc = ClientEncoding::Utf8;
            let (ours, theirs) = interleave(
                rounds,
                || enc.decode(&bytes).unwrap(),
                || std::str::from_utf8(&bytes).unwrap().to_owned(),
            );
            cases.push(Case {
                encoding: "UTF8 (std)".into(),
                text: label.into(),
                direction: "decode",
                input_len: bytes.len(),
                identical: true,
                ours,
                theirs,
            });
            // Encoding to UTF8 validates nothing but PostgreSQL's rule that text has no NUL:
            // std's way is `contains(&0)` and a copy; the bare copy is shown for reference.
            let (ours, theirs) = interleave(
                rounds,
                || enc.encode(&text).unwrap(),
                || {
                    let b = text.as_bytes();
                    (!b.contains(&0)).then(|| b.to_vec())
                },
            );
            cases.push(Case {
                encoding: "UTF8 (std)".into(),
                text: label.into(),
                direction: "encode",
                input_len: text.len(),
                identical: true,
                ours,
                theirs,
            });
            let (ours, theirs) = interleave(
                rounds,
                || enc.encode(&text).unwrap(),
                || text.as_bytes().to_vec(),
            );
            cases.push(Case {
                encoding: "UTF8 (bare copy)".into(),
                text: label.into(),
                direction: "encode",
                input_len: text.len(),
                identical: false,
                ours,
                theirs,
            });
        }
    }

    for &enc in ClientEncoding::ALL {
        let Some(er) = peer(enc) else { continue };
        if !wanted(enc.name()) {
            continue;
        }
        let (native, label) = native_text(enc, er, size);
        for (label, text) in [(label, native), ("ASCII".to_string(), ascii.clone())] {
            let Ok(bytes) = enc.encode(&text) else {
                eprintln!("{}: {label} text not encodable, skipped", enc.name());
                continue;
            };
            let decode_theirs = || {
                er.decode_without_bom_handling_and_without_replacement(&bytes)
                    .map(|c| c.into_owned())
            };
            let encode_theirs = || {
                let (out, _, errors) = er.encode(&text);
                (!errors).then(|| out.into_owned())
            };
            let same_decode = decode_theirs().as_deref() == Some(text.as_str())
                && enc.decode(&bytes).ok().as_deref() == Some(text.as_str());
            let same_encode = encode_theirs().as_deref() == Some(bytes.as_slice());
            let (ours, theirs) = interleave(rounds, || enc.decode(&bytes), decode_theirs);
            cases.push(Case {
                encoding: enc.name().into(),
                text: label.clone(),
                direction: "decode",
                input_len: bytes.len(),
                identical: same_decode,
                ours,
                theirs,
            });
            let (ours, theirs) = interleave(rounds, || enc.encode(&text), encode_theirs);
            cases.push(Case {
                encoding: enc.name().into(),
                text: label.clone(),
                direction: "encode",
                input_len: text.len(),
                identical: same_encode,
                ours,
                theirs,
            });
        }
    }

    println!(
        "{} MiB of text per case (UTF-8 size), {rounds} interleaved rounds, release build.\n",
        mb
    );
    println!("| encoding | text | direction | pgdap MB/s | encoding_rs / std MB/s | time ratio pgdap / peer |");
    println!("|---|---|---|---|---|---|");
    let mut worst: f64 = 0.0;
    for c in &cases {
        let (ours, theirs, ratio) = c.report();
        let shown = if c.identical {
            format!("{ratio:.2}")
        } else if c.encoding.contains("bare copy") {
            format!("({ratio:.2}, reference only)")
        } else {
            format!("({ratio:.2}, bytes differ)")
        };
        if c.identical {
            worst = worst.max(ratio);
        }
        println!(
            "| {} | {} | {} | {ours:.0} | {theirs:.0} | {shown} |",
            c.encoding, c.text, c.direction
        );
        eprintln!(
            "{{\"encoding\":\"{}\",\"text\":\"{}\",\"direction\":\"{}\",\"bytes\":{},\"identical\":{},\"pgdap_mbs\":{ours:.1},\"peer_mbs\":{theirs:.1},\"ratio\":{ratio:.3}}}",
            c.encoding, c.text, c.direction, c.input_len, c.identical
        );
    }
    println!("\nWorst ratio over the cases with identical bytes: {worst:.2}");
}
