/**
 * Text that trips tokenizers: runs of spaces, tabs and newlines, digits and numbers of every shape, accents and
 * combining marks, CJK, emoji with modifiers and joiners, right-to-left scripts, code, URLs, contractions, and the
 * special tokens of ChatML/GPT-2 style vocabularies written inline.
 */
export const TRICKY_TEXTS: readonly string[] = [
  'Hello, world!',
  ' leading space, trailing space ',
  '   three leading spaces and\tone tab\t\tand two',
  'line one\nline two\n\nafter a blank line\r\nwindows line\rlone carriage return',
  "Contractions: I'm, you're, we've, they'll, she'd, it's, can't, won't, DON'T, We'RE.",
  'Numbers: 0 1 12 123 1234 12345 123456789 3.14159 -2.5e-10 1,000,000 0x1F 0b1010 007 2024-12-02 12:30:45',
  'Prices: $19.99, €5, £3.50, ¥1000, 50% off, 1/2 cup, 3½ miles, ⅔ done, 10°C, 98.6°F',
  'Accents: café, naïve, résumé, Zürich, São Paulo, Ångström, fiancée, coöperate, jalapeño, Dvořák',
  'Combining marks: e\u0301 a\u0300 n\u0303 (decomposed) vs é à ñ (composed)',
  'Greek Αλφάβητο, Cyrillic Привет мир, Hebrew שלום עולם, Arabic مرحبا بالعالم, Hindi नमस्ते दुनिया',
  'CJK: 你好，世界！ 日本語のテキスト。 한국어 문장입니다.',
  'Emoji: 🚀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇫🇷 ✨✨✨',
  'Punctuation runs: !!! ??? ... ,,, ;;; --- ___ *** ### @@@ ((( ))) [[[ ]]] {{{ }}} <<< >>> """ \'\'\'',
  'Code: def f(x):\n    return x ** 2  # square\n\nconst y = arr.map((v, i) => v * i);\nif (a != b && c <= d) { e += 1; }',
  'URL and email: https://example.com/path?query=1&b=two#frag, mailto:someone@example.org, C:\\Users\\name\\file.txt',
  'Special tokens inline: <|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|><|endoftext|>',
  'Look-alike special tokens: <|im_start |> < |im_end|> <|endoftext|x> <im_start> [INST] </s> <s>',
  'Mixed case: camelCaseWord PascalCaseWord snake_case_word SCREAMING_CASE kebab-case-word iPhone eBay',
  'Whitespace only lines:\n \n  \n\t\n',
  'Zero-width: a\u200bb c\u200dd e\ufefff, non-breaking\u00a0space, em\u2003space, ideographic\u3000space',
  'Math: ∑_{i=1}^{n} x_i² ≤ ∞, ∀x∈ℝ: x≥0 ⇒ √x∈ℝ, α+β=γ, 2×3÷4≈1.5, a≠b',
  'Repetition: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbb 1111111111111111111 ............',
  'The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.',
  'Once upon a time, in a small village by the sea, there lived an old fisherman who told stories to anyone who would listen. ' +
    'Every evening the children gathered around his boat; he spoke of storms, of whales as long as streets, and of a lighthouse ' +
    'that sang when the fog came in. Nobody believed him, of course — and yet, on foggy nights, everybody listened for the song.',
  'Quotes: "double" \'single\' “curly double” ‘curly single’ «guillemets» „German“ — em dash – en dash … ellipsis',
  'JSON: {"name": "LoRA Studio", "version": 1.0, "tags": ["a", "b"], "nested": {"x": null, "y": true}}',
  'Markdown: # Title\n\n* item one\n* item two\n\n1. first\n2. second\n\n**bold** _italic_ `code` [link](http://x.y)',
  'Tabs\tbetween\twords\tand trailing tab\t',
  'Numbers glued to words: abc123def 4ever 24/7 COVID-19 B2B 3D 1st 2nd 3rd 4th mp3 H2O',
];
