#!/usr/bin/env node
// Draws the app icon with nothing but Node: assets/icon.png (512×512, the window/installer icon) and
// assets/drag-icon.png (64×64, shown under the cursor when an adapter is dragged out).
// The picture says what LoRA is: a tall B and a wide A whose product is the small update ΔW, with a loss curve
// falling across it. Shapes are signed-distance functions, so edges are anti-aliased at any size.
import { Buffer } from 'node:buffer';
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** RGBA8 pixels → PNG bytes (colour type 6, no interlace, filter 0 on every row). */
export function encodePng(width, height, rgba) {
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0;
    Buffer.from(rgba.buffer, rgba.byteOffset + y * width * 4, width * 4).copy(raw, y * (width * 4 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw, { level: 9 })), chunk('IEND', Buffer.alloc(0))]);
}

// Signed distances in the 512-unit design space (negative inside).
function roundedRect(x, y, x0, y0, x1, y1, r) {
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const qx = Math.abs(x - cx) - (x1 - x0) / 2 + r;
  const qy = Math.abs(y - cy) - (y1 - y0) / 2 + r;
  return Math.hypot(Math.max(qx, 0), Math.max(qy, 0)) + Math.min(Math.max(qx, qy), 0) - r;
}

const CURVE = Array.from({ length: 49 }, (_, i) => {
  const t = i / 48;
  return [214 + t * 162, 246 + 128 * (1 - Math.exp(-4.2 * t)) + 4 * Math.sin(t * 19) * (1 - t)];
});

function polyline(x, y, points, halfWidth) {
  let best = Infinity;
  for (let i = 1; i < points.length; i++) {
    const [ax, ay] = points[i - 1];
    const [bx, by] = points[i];
    const dx = bx - ax;
    const dy = by - ay;
    const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
    best = Math.min(best, Math.hypot(x - ax - t * dx, y - ay - t * dy));
  }
  return best - halfWidth;
}

const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
const INDIGO = hex('#3730a3');
const TEAL = hex('#0f9f8f');
const WHITE = [255, 255, 255];
const AMBER = hex('#fbbf24');

export function renderIcon(size) {
  const px = new Uint8Array(size * size * 4);
  const unit = 512 / size;
  for (let j = 0; j < size; j++) {
    for (let i = 0; i < size; i++) {
      const x = (i + 0.5) * unit;
      const y = (j + 0.5) * unit;
      // coverage from a signed distance, one output pixel wide
      const cover = (d) => Math.max(0, Math.min(1, 0.5 - d / unit));
      let rgb = [0, 0, 0];
      let alpha = 0;
      const over = (color, a) => {
        if (a <= 0) return;
        const outA = a + alpha * (1 - a);
        rgb = rgb.map((c, k) => (color[k] * a + c * alpha * (1 - a)) / outA);
        alpha = outA;
      };
      const t = Math.min(1, Math.max(0, (x + y) / 1024));
      over(INDIGO.map((c, k) => c + (TEAL[k] - c) * t), cover(roundedRect(x, y, 24, 24, 488, 488, 104)));
      over(WHITE, 0.95 * cover(roundedRect(x, y, 112, 136, 170, 392, 18))); // B: out × r
      over(WHITE, 0.7 * cover(roundedRect(x, y, 198, 136, 392, 194, 18))); // A: r × in
      over(WHITE, 0.16 * cover(roundedRect(x, y, 198, 222, 392, 392, 22))); // ΔW = B·A
      over(AMBER, cover(polyline(x, y, CURVE, 9)));
      const o = (j * size + i) * 4;
      px[o] = Math.round(rgb[0]);
      px[o + 1] = Math.round(rgb[1]);
      px[o + 2] = Math.round(rgb[2]);
      px[o + 3] = Math.round(alpha * 255);
    }
  }
  return px;
}

const assets = new URL('../assets/', import.meta.url);
for (const [name, size] of [['icon.png', 512], ['drag-icon.png', 64]]) {
  writeFileSync(new URL(name, assets), encodePng(size, size, renderIcon(size)));
  console.log(`wrote assets/${name} (${size}×${size})`);
}
