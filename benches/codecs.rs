//! Codec throughput: pgdap's PostgreSQL-exact codecs against encoding_rs (and, for UTF8,
//! against std's copy-and-validate), on generated text.
//!
//! ```text
//! cargo bench --bench codecs                    # 4 MiB per text, 9 rounds
//! MB=4 ROUNDS=5 ONLY=GBK,WIN1252 cargo bench --bench codecs
//! ONLY=UHC TEXT=prose DIRECTION=decode cargo bench --bench codecs   # texts whose name has "prose"
//! ```
//!
//! For every encoding both implement, the encoding's texts and ASCII-only English: the
//! script's words (CJK for GBK/SJIS/UHC, Russian for the Cyrillic encodings, French for
//! the Western ones, generated words of the encoding's letters for the others), and for
//! GBK/SJIS/UHC and the Cyrillic encodings prose: paragraphs drawn from sentence lists
//! (constitutions, news reports) with their spaces, punctuation and digits, and for CJK
//! the same prose mixed with ASCII fragments (names, code, numbers) as technical writing
//! has it. Each case is converted in both directions by pgdap and by encoding_rs,
//! **interleaved**: in every round each runs once, in another order every round, so the
//! load of the shared machine falls on all alike. Times are the thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so time slices the shared machine gives to other processes
//! are not counted. encoding_rs runs in two forms: as documented (its `Cow`, borrowed when
//! nothing changes: ASCII input costs it a scan) and made owned (`into_owned`, as pgdap's
//! `String`/`Vec<u8>` results are). Reported: MB/s of input (median over rounds) of each,
//! and the medians of the per-round time ratios pgdap / encoding_rs for both forms (below
//! 1 means pgdap is faster). UTF8 is compared with std: decode = `str::from_utf8`
//! (borrowed) and + `to_owned`, encode = `memchr` for NUL (PostgreSQL's only rule for
//! UTF8 text; borrowed) and + a copy. A case is only compared when both produce identical
//! bytes; otherwise it is listed as differing (WHATWG ≠ PostgreSQL).
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

/// Sentences of prose (constitutions and news reports): with spaces, punctuation and
/// digits as real text has them. [`prose_text`] draws paragraphs from them.
const KOREAN_PROSE: &[&str] = &[
    "대한민국은 민주공화국이다.",
    "대한민국의 주권은 국민에게 있고, 모든 권력은 국민으로부터 나온다.",
    "대한민국의 국민이 되는 요건은 법률로 정한다.",
    "국가는 법률이 정하는 바에 의하여 재외국민을 보호할 의무를 진다.",
    "대한민국의 영토는 한반도와 그 부속도서로 한다.",
    "모든 국민은 인간으로서의 존엄과 가치를 가지며, 행복을 추구할 권리를 가진다.",
    "모든 국민은 법 앞에 평등하다.",
    "모든 국민은 신체의 자유를 가진다.",
    "모든 국민은 거주와 이전의 자유를 가진다.",
    "모든 국민은 언론과 출판의 자유와 집회와 결사의 자유를 가진다.",
    "서울시는 올해 1분기에 시내버스 노선 12개를 새로 만들었다고 3일 밝혔다.",
    "기상청은 내일 전국에 비가 오고 기온이 5도가량 떨어질 것으로 내다봤다.",
    "정부는 2025년까지 공공 데이터베이스 서버 300대를 클라우드로 옮길 계획이다.",
    "이번 조사에서 응답자의 62.5%가 경제가 나아지고 있다고 답했다.",
    "한국은행은 기준금리를 연 3.50%로 동결했다.",
    "지난해 수출은 6천억 달러를 넘어 역대 최대를 기록했다.",
    "시민들은 주말 동안 한강 공원에서 축제를 즐겼다.",
    "전문가들은 당분간 물가 상승세가 이어질 것이라고 전망했다.",
];

const JAPANESE_PROSE: &[&str] = &[
    "日本国民は、正当に選挙された国会における代表者を通じて行動する。",
    "天皇は、日本国の象徴であり日本国民統合の象徴であつて、この地位は、主権の存する日本国民の総意に基く。",
    "すべて国民は、個人として尊重される。",
    "生命、自由及び幸福追求に対する国民の権利については、公共の福祉に反しない限り、最大の尊重を必要とする。",
    "すべて国民は、法の下に平等であつて、人種、信条、性別、社会的身分又は門地により、差別されない。",
    "思想及び良心の自由は、これを侵してはならない。",
    "学問の自由は、これを保障する。",
    "東京都は3日、新たに12の路線を開設すると発表した。",
    "気象庁によると、明日は全国的に雨が降り、気温は5度ほど下がる見込みだ。",
    "政府は2025年までに公共のデータベースサーバー300台をクラウドへ移す計画だ。",
    "調査では回答者の62.5%が「景気は良くなっている」と答えた。",
    "日本銀行は政策金利を0.25%に据え置いた。",
    "昨年の輸出額は100兆円を超え、過去最高となった。",
    "週末には多くの人が公園を訪れ、桜を楽しんだ。",
    "専門家は、物価の上昇がしばらく続くとみている。",
];

const CHINESE_PROSE: &[&str] = &[
    "中华人民共和国是工人阶级领导的、以工农联盟为基础的人民民主专政的社会主义国家。",
    "中华人民共和国的一切权力属于人民。",
    "中华人民共和国实行依法治国，建设社会主义法治国家。",
    "中华人民共和国公民在法律面前一律平等。",
    "国家尊重和保障人权。",
    "公民的人格尊严不受侵犯。",
    "新华社北京3月5日电，今年国内生产总值增长目标为5%左右。",
    "据统计，全市共有各类学校1200所，在校学生约45万人。",
    "气象台预报，明天全省大部分地区有小到中雨，气温下降4到6摄氏度。",
    "政府计划在2025年前把300台公共数据库服务器迁移到云上。",
    "调查显示，62.5%的受访者认为“经济正在好转”。",
    "中国人民银行宣布，一年期贷款市场报价利率维持在3.45%不变。",
    "去年全年出口总额首次突破20万亿元，创历史新高。",
    "周末，许多市民来到公园赏花、散步。",
    "专家认为，物价上涨的势头短期内仍将持续。",
];

const RUSSIAN_PROSE: &[&str] = &[
    "Российская Федерация есть демократическое федеративное правовое государство с республиканской формой правления.",
    "Человек, его права и свободы являются высшей ценностью.",
    "Носителем суверенитета и единственным источником власти в Российской Федерации является ее многонациональный народ.",
    "Все равны перед законом и судом.",
    "Каждый имеет право на свободу и личную неприкосновенность.",
    "Каждому гарантируется свобода мысли и слова.",
    "По данным Росстата, в 2023 году население Москвы составило 13,1 млн человек.",
    "Центральный банк сохранил ключевую ставку на уровне 16% годовых.",
    "Синоптики обещают на выходных до 25 градусов тепла и кратковременные дожди.",
    "Правительство планирует до 2025 года перевести 300 серверов баз данных в облако.",
    "В опросе 62,5% респондентов ответили, что экономика улучшается.",
    "В прошлом году экспорт вырос на 4,2% и достиг рекордного уровня.",
    "В выходные тысячи горожан пришли в парки на праздник весны.",
    "Эксперты считают, что рост цен продолжится еще несколько месяцев.",
];

/// ASCII inserted in the "mixed" texts: product names, code, numbers, addresses, as
/// technical articles mix them into CJK prose.
const ASCII_BITS: &[&str] = &[
    "PostgreSQL 15",
    "SELECT * FROM users WHERE id = 42;",
    "v2.3.1",
    "https://example.com/docs",
    "CPU 85%",
    "API",
    "OpenSSL 3.0",
    "TLS 1.3",
    "(2024-03-05)",
    "ID: 1234",
    "GitHub",
    "Linux",
];

/// Paragraphs of 2-6 sentences drawn from `sentences`, about `size` bytes (UTF-8):
/// `space` between sentences (Korean and Russian; Chinese and Japanese write none),
/// a numbered heading now and then, a line break after each paragraph; `mixed`: ASCII
/// fragments ([`ASCII_BITS`]) between sentences, as technical writing has them.
fn prose_text(sentences: &[&str], size: usize, seed: u64, space: bool, mixed: bool) -> String {
    let mut rng = Rng(seed);
    let mut out = String::with_capacity(size + 256);
    let mut article = 1;
    while out.len() < size {
        if rng.below(3) == 0 {
            out.push_str(&format!("({article}) "));
            article += 1;
        }
        for k in 0..2 + rng.below(5) {
            if k > 0 && space {
                out.push(' ');
            }
            if mixed && rng.below(2) == 0 {
                out.push_str(ASCII_BITS[rng.below(ASCII_BITS.len())]);
                out.push(' ');
            }
            out.push_str(sentences[rng.below(sentences.len())]);
        }
        out.push('\n');
    }
    out
}

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
/// The texts of an encoding besides ASCII, each with its name: the script's words, and
/// for CJK and Russian prose (and CJK prose mixed with ASCII).
fn native_texts(
    enc: ClientEncoding,
    er: &'static encoding_rs::Encoding,
    size: usize,
) -> Vec<(String, String)> {
    use ClientEncoding as E;
    let cjk = |words: String, prose: &[&str], name: &str, seed: u64, space: bool| {
        vec![
            (format!("{name} words"), words),
            (
                format!("{name} prose"),
                prose_text(prose, size, seed, space, false),
            ),
            (
                format!("{name} mixed"),
                prose_text(prose, size, seed + 1, space, true),
            ),
        ]
    };
    match enc {
        E::Gbk => cjk(
            words_text(CHINESE, size, 1, true),
            CHINESE_PROSE,
            "Chinese",
            11,
            false,
        ),
        E::Sjis => cjk(
            words_text(JAPANESE, size, 2, false).replace(' ', ""),
            JAPANESE_PROSE,
            "Japanese",
            13,
            false,
        ),
        E::Uhc => cjk(
            words_text(KOREAN, size, 3, false),
            KOREAN_PROSE,
            "Korean",
            15,
            true,
        ),
        E::Iso8859_5 | E::Win866 | E::Win1251 => vec![
            ("Russian words".into(), words_text(RUSSIAN, size, 4, false)),
            (
                "Russian prose".into(),
                prose_text(RUSSIAN_PROSE, size, 17, true, false),
            ),
        ],
        E::Latin1 | E::Latin9 | E::Win1252 => {
            let pool = if enc == E::Latin1 {
                FRENCH.replace("sœur", "sur").replace("cœur", "coeur")
            } else {
                FRENCH.to_string()
            };
            vec![("French words".into(), words_text(&pool, size, 5, false))]
        }
        _ => vec![("letters".into(), letters_text(enc, er, size))],
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
    /// Times of pgdap's `Cow` entry point, of its owned one, of the peer as documented
    /// (`Cow`), of the peer made owned.
    ours_cow: Vec<f64>,
    ours_owned: Vec<f64>,
    cow: Vec<f64>,
    owned: Vec<f64>,
}

impl Case {
    fn new(
        encoding: &str,
        text: &str,
        direction: &'static str,
        input_len: usize,
        identical: bool,
        times: [Vec<f64>; 4],
    ) -> Case {
        let [ours_cow, ours_owned, cow, owned] = times;
        Case {
            encoding: encoding.into(),
            text: text.into(),
            direction,
            input_len,
            identical,
            ours_cow,
            ours_owned,
            cow,
            owned,
        }
    }
    fn mbs(&self, t: &[f64]) -> f64 {
        self.input_len as f64 / 1e6 / median(t.to_vec())
    }
    /// The median over rounds of pgdap's time / the peer's, in the same round.
    fn ratio(ours: &[f64], theirs: &[f64]) -> f64 {
        median(ours.iter().zip(theirs).map(|(a, b)| a / b).collect())
    }
}

/// A runner for [`interleave`]: runs `f` once and returns its thread CPU time.
fn timed<T>(mut f: impl FnMut() -> T) -> impl FnMut() -> f64 {
    move || time(&mut f)
}

/// Runs pgdap's `Cow` and owned entry points and the peer's two forms `rounds` times
/// each, every round in another order (rotated, alternately backwards), so that none is
/// always first or always after the same one.
fn interleave(
    rounds: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
    mut c: impl FnMut() -> f64,
    mut d: impl FnMut() -> f64,
) -> [Vec<f64>; 4] {
    let mut runners: [&mut dyn FnMut() -> f64; 4] = [&mut a, &mut b, &mut c, &mut d];
    // One warm-up each (tables, page faults of the first output buffers).
    for r in runners.iter_mut() {
        r();
    }
    let mut t: [Vec<f64>; 4] = Default::default();
    for r in 0..rounds {
        for i in 0..4 {
            let who = if r % 2 == 0 {
                (r / 2 + i) % 4
            } else {
                (r / 2 + 4 - i) % 4
            };
            t[who].push(runners[who]());
        }
    }
    t
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
    let text_filter = std::env::var("TEXT").ok();
    let direction_filter = std::env::var("DIRECTION").ok();
    let keep = |text: &str, direction: &str| {
        text_filter.as_deref().is_none_or(|t| text.contains(t))
            && direction_filter.as_deref().is_none_or(|d| d == direction)
    };
    let size = if measuring { mb << 20 } else { 64 << 10 };
    let ascii = words_text(ENGLISH, size, 6, false);
    let mut cases = Vec::new();

    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == name));

    // UTF8 against std. Decode: `str::from_utf8` (borrowed), + `to_owned`. Encode: the
    // NUL check PostgreSQL's text needs, with `memchr` (borrowed), + a copy.
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
            if keep(label, "decode") {
                let times = interleave(
                    rounds,
                    timed(|| enc.decode_cow(&bytes).unwrap().len()),
                    timed(|| enc.decode(&bytes).unwrap()),
                    timed(|| std::str::from_utf8(&bytes).unwrap().len()),
                    timed(|| std::str::from_utf8(&bytes).unwrap().to_owned()),
                );
                cases.push(Case::new(
                    "UTF8 (std)",
                    label,
                    "decode",
                    bytes.len(),
                    true,
                    times,
                ));
            }
            if !keep(label, "encode") {
                continue;
            }
            let times = interleave(
                rounds,
                timed(|| enc.encode_cow(&text).unwrap().len()),
                timed(|| enc.encode(&text).unwrap()),
                timed(|| {
                    let b = text.as_bytes();
                    memchr::memchr(0, b).is_none().then_some(b.len())
                }),
                timed(|| {
                    let b = text.as_bytes();
                    memchr::memchr(0, b).is_none().then(|| b.to_vec())
                }),
            );
            cases.push(Case::new(
                "UTF8 (std)",
                label,
                "encode",
                text.len(),
                true,
                times,
            ));
        }
    }

    for &enc in ClientEncoding::ALL {
        let Some(er) = peer(enc) else { continue };
        if !wanted(enc.name()) {
            continue;
        }
        let mut texts = native_texts(enc, er, size);
        texts.push(("ASCII".to_string(), ascii.clone()));
        for (label, text) in texts {
            let Ok(bytes) = enc.encode(&text) else {
                eprintln!("{}: {label} text not encodable, skipped", enc.name());
                continue;
            };
            // As documented: a `Cow`, borrowed when the input needs no change (ASCII).
            let decode_cow = || er.decode_without_bom_handling_and_without_replacement(&bytes);
            let decode_owned = || {
                er.decode_without_bom_handling_and_without_replacement(&bytes)
                    .map(|c| c.into_owned())
            };
            let encode_cow = || {
                let (out, _, errors) = er.encode(&text);
                (!errors).then_some(out)
            };
            let encode_owned = || {
                let (out, _, errors) = er.encode(&text);
                (!errors).then(|| out.into_owned())
            };
            let same_decode = decode_owned().as_deref() == Some(text.as_str())
                && enc.decode(&bytes).ok().as_deref() == Some(text.as_str())
                && enc.decode_cow(&bytes).ok().as_deref() == Some(text.as_str());
            let same_encode = encode_owned().as_deref() == Some(bytes.as_slice())
                && enc.encode_cow(&text).ok().as_deref() == Some(bytes.as_slice());
            if keep(&label, "decode") {
                let times = interleave(
                    rounds,
                    timed(|| enc.decode_cow(&bytes)),
                    timed(|| enc.decode(&bytes)),
                    timed(decode_cow),
                    timed(decode_owned),
                );
                cases.push(Case::new(
                    enc.name(),
                    &label,
                    "decode",
                    bytes.len(),
                    same_decode,
                    times,
                ));
            }
            if !keep(&label, "encode") {
                continue;
            }
            let times = interleave(
                rounds,
                timed(|| enc.encode_cow(&text)),
                timed(|| enc.encode(&text)),
                timed(encode_cow),
                timed(encode_owned),
            );
            cases.push(Case::new(
                enc.name(),
                &label,
                "encode",
                text.len(),
                same_encode,
                times,
            ));
        }
    }

    println!(
        "{} MiB of text per case (UTF-8 size), {rounds} interleaved rounds, release build.\n",
        mb
    );
    println!(
        "| encoding | text | direction | MB/s pgdap Cow / owned | MB/s peer Cow / owned | ratio Cow | ratio owned |"
    );
    println!("|---|---|---|---|---|---|---|");
    let (mut worst_cow, mut worst_owned): (f64, f64) = (0.0, 0.0);
    for c in &cases {
        let (ours_cow, ours_owned) = (c.mbs(&c.ours_cow), c.mbs(&c.ours_owned));
        let (cow, owned) = (c.mbs(&c.cow), c.mbs(&c.owned));
        let r_cow = Case::ratio(&c.ours_cow, &c.cow);
        let r_owned = Case::ratio(&c.ours_owned, &c.owned);
        let shown = |r: f64| {
            if c.identical {
                format!("{r:.2}")
            } else {
                format!("({r:.2}, bytes differ)")
            }
        };
        if c.identical {
            worst_cow = worst_cow.max(r_cow);
            worst_owned = worst_owned.max(r_owned);
        }
        println!(
            "| {} | {} | {} | {ours_cow:.0} / {ours_owned:.0} | {cow:.0} / {owned:.0} | {} | {} |",
            c.encoding,
            c.text,
            c.direction,
            shown(r_cow),
            shown(r_owned)
        );
        eprintln!(
            "{{\"encoding\":\"{}\",\"text\":\"{}\",\"direction\":\"{}\",\"bytes\":{},\"identical\":{},\"pgdap_cow_mbs\":{ours_cow:.1},\"pgdap_owned_mbs\":{ours_owned:.1},\"peer_cow_mbs\":{cow:.1},\"peer_owned_mbs\":{owned:.1},\"ratio_cow\":{r_cow:.3},\"ratio_owned\":{r_owned:.3}}}",
            c.encoding, c.text, c.direction, c.input_len, c.identical
        );
    }
    println!(
        "\nWorst ratio over the cases with identical bytes: {worst_cow:.2} to Cow, {worst_owned:.2} to owned"
    );
}
