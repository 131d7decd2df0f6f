import { IGNORE_INDEX, type Tokenizer, type TrainingExample } from '../model/types.ts';
import type { ChatRenderer } from './chat-template.ts';
import { RecordProblem } from './errors.ts';
import type { ChatMessage } from './formats.ts';

/** A half-open character range [start, end) of rendered text. */
export type Span = [number, number];

// End-of-turn markers of the common families, for when no tokenizer can tell which strings are special tokens.
const KNOWN_TURN_ENDS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|eom_id|>', '<|end_of_text|>', '</s>'];

/**
 * Length of the special token (end of turn, EOS) that starts at `pos`, or 0. With a tokenizer, any token that the
 * tokenizer drops under skip_special_tokens counts; otherwise the model's EOS string and the usual markers do.
 */
export function endOfTurnLength(text: string, pos: number, tokenizer: Tokenizer | null, specialTokens: Readonly<Record<string, string>>): number {
  if (pos >= text.length) return 0;
  if (tokenizer) {
    const ids = tokenizer.encode(text.slice(pos, pos + 64), { addSpecialTokens: false });
    if (ids.length > 0) {
      const s = tokenizer.decode([ids[0]]);
      if (s.length > 0 && text.startsWith(s, pos) && tokenizer.decode([ids[0]], { skipSpecialTokens: true }) === '') return s.length;
    }
  }
  const candidates = [specialTokens.eos_token, ...KNOWN_TURN_ENDS];
  for (const c of candidates) if (c && text.startsWith(c, pos)) return c.length;
  return 0;
}

/** Length of the common prefix of a[ai…] and b[bi…]. */
function commonPrefixLength(a: string, b: string, ai = 0, bi = 0): number {
  const n = Math.min(a.length - ai, b.length - bi);
  let i = 0;
  while (i < n && a.charCodeAt(ai + i) === b.charCodeAt(bi + i)) i++;
  return i;
}

/** Templates may trim or strip newlines from content (Llama 3 does `| trim`), so look for those forms too. */
function contentForms(content: string): string[] {
  const forms = [content, content.trim(), content.replace(/^\n+|\n+$/g, ''), content.trimEnd(), content.trimStart()];
  return [...new Set(forms)].filter((f) => f.length > 0);
}

function find(text: string, content: string, from: number): { at: number; length: number } | null {
  let best: { at: number; length: number } | null = null;
  for (const form of contentForms(content)) {
    const at = text.indexOf(form, from);
    if (at !== -1 && (best === null || at < best.at || (at === best.at && form.length > best.length))) best = { at, length: form.length };
  }
  return best;
}

/**
 * Reasoning templates (Qwen3) split content at `</think>`: they drop the reasoning from turns before the last user
 * message and rebuild the block around it in later ones, so only the answer after `</think>` is found verbatim there;
 * the rebuilt block in front of it is taken in by `withReasoningBlock`.
 */
function findAnswer(text: string, content: string, from: number): { at: number; length: number } | null {
  const cut = content.lastIndexOf('</think>');
  if (cut === -1) return null;
  const answer = content.slice(cut + '</think>'.length).replace(/^\n+/, '');
  return answer.trim() === '' ? null : find(text, answer, from);
}

/**
 * Where a turn's trained span starts. A reasoning block the template writes between the generation prompt and the
 * answer (Qwen3: `<think>\n…\n</think>\n\n`, rebuilt from the message or written empty) is what the model produces
 * after the generation prompt at inference, so it is trained with the answer. Whether the message held the block
 * verbatim or as `<think>r</think>ans`, the same tokens are trained.
 */
function withReasoningBlock(text: string, from: number, answerAt: number): number {
  const gap = text.slice(from, answerAt);
  const open = gap.indexOf('<think>');
  if (open === -1 || gap.slice(0, open).trim() !== '' || !gap.trimEnd().endsWith('</think>')) return answerAt;
  return from + open;
}

/**
 * Where the answer of assistant turn i may start: how far the conversation before it, rendered with the generation
 * prompt (as at inference), agrees with the rendered whole. Rendering messages[0:i] for every turn is quadratic in
 * the length of the conversation (an 800-turn chat took seconds), so only the last prompt turn (`prompt`, whose
 * content was found at `prompt.at` of the rendered text) onward is rendered, after the system message if there is
 * one (so a template does not add its default one, and one that moves the system prompt into a user turn still does).
 * The agreement from that turn's content on is the same as the whole partial render's for templates that render
 * each turn from its own message; when the window cannot be rendered, the whole partial conversation is.
 */
function answerLowerBound(renderer: ChatRenderer, messages: readonly ChatMessage[], i: number, rendered: string, prompt: { index: number; at: number } | null): number | null {
  if (prompt !== null) {
    const head = messages[0]?.role === 'system' && prompt.index > 0 ? [messages[0]] : [];
    try {
      const window = renderer.render([...head, ...messages.slice(prompt.index, i)], true);
      const inWindow = find(window, messages[prompt.index].content, 0);
      if (inWindow) return prompt.at + commonPrefixLength(window, rendered, inWindow.at, prompt.at);
    } catch {
      // a template may refuse the window (e.g. one that wants the first message to be the user's); render it all
    }
  }
  try {
    return commonPrefixLength(renderer.render(messages.slice(0, i), true), rendered);
  } catch {
    return null; // a template may refuse a partial conversation; the running cursor still bounds the search
  }
}

/**
 * Where each assistant turn's content (plus the end-of-turn token that closes it) lies in the rendered conversation.
 *
 * Templates differ in how they wrap turns, so spans are found, not assumed: rendering the messages before an
 * assistant turn with add_generation_prompt gives the text that must precede the answer (as at inference), which
 * bounds the search from below (answerLowerBound); the answer is then the first occurrence of its content after that
 * point and after the previous turns. This survives templates that trim content, add reasoning blocks, or move the
 * system prompt.
 */
export function assistantSpans(
  renderer: ChatRenderer,
  messages: readonly ChatMessage[],
  rendered: string,
  tokenizer: Tokenizer | null,
): Span[] {
  const spans: Span[] = [];
  let cursor = 0;
  let prompt: { index: number; at: number } | null = null;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role === 'system') continue; // some templates move it (Mistral: into a later user turn)
    if (m.role !== 'assistant') {
      const hit = find(rendered, m.content, cursor);
      if (hit) {
        cursor = hit.at + hit.length;
        prompt = { index: i, at: hit.at };
      }
      continue;
    }
    let from = cursor;
    if (i > 0) from = Math.max(from, answerLowerBound(renderer, messages, i, rendered, prompt) ?? 0);
    if (m.content.trim() === '') continue;
    const hit = find(rendered, m.content, from) ?? findAnswer(rendered, m.content, from);
    if (!hit) {
      throw new RecordProblem(`the chat template does not reproduce assistant message ${i} verbatim, so the part to train on cannot be found`, `messages[${i}].content`);
    }
    let end = hit.at + hit.length;
    end += endOfTurnLength(rendered, end, tokenizer, renderer.specialTokens);
    spans.push([withReasoningBlock(rendered, from, hit.at), end]);
    cursor = end;
  }
  return spans;
}

/** Length of the common prefix of a and b[from…]. */
function commonIdsPrefix(a: readonly number[], b: readonly number[], from = 0): number {
  const n = Math.min(a.length, b.length - from);
  let i = 0;
  while (i < n && a[i] === b[from + i]) i++;
  return i;
}

/** A place where the text and its ids are cut alike: text[0:char] tokenizes to ids[0:token]. */
interface Anchor {
  char: number;
  token: number;
}

/**
 * Anchors at the special tokens (those skip_special_tokens drops: turn markers, BOS/EOS) of tokenized text: the
 * tokenizer splits its input at them before anything else, so text before and after one are tokenized apart. Each
 * piece between two of them is checked to tokenize alone to exactly its ids (a tokenizer that treats the start of
 * its input specially, or a special token that swallows the spaces next to it, fails the check); anchors stop at
 * the first piece that does not, so every anchor returned is exact.
 */
function specialTokenAnchors(tokenizer: Tokenizer, text: string, ids: readonly number[]): Anchor[] {
  const anchors: Anchor[] = [{ char: 0, token: 0 }];
  const specialText = new Map<number, string | null>();
  const special = (id: number): string | null => {
    let s = specialText.get(id);
    if (s === undefined) {
      const d = tokenizer.decode([id]);
      s = d.length > 0 && tokenizer.decode([id], { skipSpecialTokens: true }) === '' ? d : null;
      specialText.set(id, s);
    }
    return s;
  };
  let last = anchors[0];
  for (let t = 0; t < ids.length; t++) {
    const s = special(ids[t]);
    if (s === null) continue;
    const at = text.indexOf(s, last.char);
    if (at === -1) break;
    const piece = tokenizer.encode(text.slice(last.char, at), { addSpecialTokens: false });
    if (piece.length !== t - last.token || commonIdsPrefix(piece, ids, last.token) !== piece.length) break;
    anchors.push({ char: at, token: t });
    last = { char: at + s.length, token: t + 1 };
    anchors.push(last);
  }
  return anchors;
}

/** The last anchor at or before char b (anchors are in order). */
function anchorAt(anchors: readonly Anchor[], b: number): Anchor {
  let lo = 0;
  let hi = anchors.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (anchors[mid].char <= b) lo = mid;
    else hi = mid - 1;
  }
  return anchors[lo];
}

/**
 * Tokenizes `text` once, as the model will see it, and labels the tokens inside `spans` with their ids; every other
 * position gets −100. The token index of a character boundary b is that of tokenizing text[0:b]: when those ids are
 * a prefix of the full ids the boundary falls between tokens; otherwise one token straddles it, and that token is
 * trained on (as transformers' assistant mask does for tokens overlapping a span).
 *
 * Tokenizing text[0:b] for every boundary is quadratic in the length of the text (an 800-turn chat took minutes);
 * without added special tokens (rendered chats), text[0:b] is tokenized from the nearest special-token anchor
 * before b instead (specialTokenAnchors), which gives the same ids: the ids before the anchor are the full text's.
 * With added special tokens (a BOS/EOS the post-processor adds around the input) there are one or two boundaries,
 * and the whole prefix is tokenized as before.
 */
export function tokenizeWithSpans(tokenizer: Tokenizer, text: string, spans: readonly Span[], addSpecialTokens: boolean): TrainingExample {
  const inputIds = tokenizer.encode(text, { addSpecialTokens });
  const labels = new Array<number>(inputIds.length).fill(IGNORE_INDEX);
  let anchors: Anchor[] | null = null;
  const boundary = (b: number, side: 'start' | 'end'): number => {
    if (b <= 0) return 0;
    if (b >= text.length) return inputIds.length;
    let from: Anchor = { char: 0, token: 0 };
    if (!addSpecialTokens) {
      anchors ??= specialTokenAnchors(tokenizer, text, inputIds);
      from = anchorAt(anchors, b);
    }
    const prefix = tokenizer.encode(text.slice(from.char, b), { addSpecialTokens });
    const k = from.token + commonIdsPrefix(prefix, inputIds, from.token);
    if (k === from.token + prefix.length) return k;
    return side === 'start' ? k : Math.min(k + 1, inputIds.length);
  };
  for (const [s, e] of spans) {
    if (e <= s) continue;
    const from = boundary(s, 'start');
    const to = boundary(e, 'end');
    for (let t = from; t < to; t++) labels[t] = inputIds[t];
  }
  return { inputIds, labels };
}

/** Character spans of the trained tokens of a pre-tokenized example, over the text its runs decode to. */
export function decodeWithSpans(tokenizer: Tokenizer | null, example: TrainingExample): { text: string; spans: Span[] } {
  const spans: Span[] = [];
  let text = '';
  let t = 0;
  while (t < example.inputIds.length) {
    const trained = example.labels[t] !== IGNORE_INDEX;
    let u = t;
    while (u < example.inputIds.length && (example.labels[u] !== IGNORE_INDEX) === trained) u++;
    const ids = example.inputIds.slice(t, u);
    if (!tokenizer && t > 0) text += ' ';
    const piece = tokenizer ? tokenizer.decode(ids) : ids.join(' ');
    if (trained && piece.length > 0) spans.push([text.length, text.length + piece.length]);
    text += piece;
    t = u;
  }
  return { text, spans };
}
