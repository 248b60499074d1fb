"""JavaScript for automation, as MyController v2 runs it (tasks with ``evaluationType: javascript``, schedules'
``customVariableType: javascript``), in an embedded QuickJS sandbox (``quickjs-ng`` from PyPI) with limits.

**The sandbox.** One fresh QuickJS runtime per run, in the calling thread (a quarter of a millisecond to make), with a
CPU-time limit (``ScriptLimits.max_seconds``), a memory limit for everything the script allocates
(``max_memory_bytes``) and a stack limit (``max_stack_bytes``). QuickJS on its own has no I/O: no ``require``, no
files, no network, no timers; only the language and what we hand in below. A script that loops or allocates forever
raises ``ScriptLimitError`` (a ``TemplateError``): the task or schedule it belongs to records it in its state and
nothing else is held up. The result's JSON is bounded too (``max_result_bytes``).

**What a script sees** (the reference's globals): each variable by name; ``task`` or ``schedule``; ``taskEvent``
(the event); ``console.log/warn/error`` (to our log, bounded); ``mcUtils.convert`` (``ToString``, ``ToBytes``,
``ToHexString``, ``HexStringToString``, ``HexStringToBytes``, ``ToStringFromBase64``, ``To{UInt,Int}{16,32,64}{LE,
BE}``) and ``mcUtils.crypto`` (``MD5``, ``Sha1``, ``Sha256``, ``Sha512`` + ``HexString`` (upper-case) or ``Bytes``).
The reference handed scripts Go structs, so scripts read ``myField.Current.Value`` and ``taskEvent.EntityID``:
every object here answers its keys case-insensitively (a Proxy), so those names reach our camelCase records.
``mcUtils.httpClient`` throws: scripts have no I/O here (a ``webhook`` variable makes HTTP calls).

**The result** is the value of the script's last expression, as in the reference: for a task, an object's
``isTriggered`` decides and its other keys join the variables; for a schedule's custom variables, the object's keys
join the variables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .templates import TemplateError

log = logging.getLogger("mycontroller.scripts")


@dataclass(frozen=True, slots=True)
class ScriptLimits:
    """What one run may use."""

    max_seconds: float = 1.0
    """CPU time for the whole run (the reference allowed 30 minutes; a Lambda function has seconds)."""
    max_memory_bytes: int = 32 * 1024 * 1024
    max_stack_bytes: int = 512 * 1024
    max_source: int = 64 * 1024
    max_result_bytes: int = 256 * 1024
    max_log_lines: int = 20


DEFAULT_LIMITS: Final = ScriptLimits()
MAX_TIMEOUT_S: Final = 10.0
"""The most a task's ``script_timeout`` label (the reference's per-task timeout) may ask for."""


class ScriptError(TemplateError):
    """A script that does not compile or fails while running; the message is fit for a task's state."""


class ScriptLimitError(ScriptError):
    """A script stopped by one of its ``ScriptLimits``."""


_CRYPTO_SOURCE: Final = r"""
globalThis.__mc_crypto = function (bytesOf, hex) {
  "use strict";
  // Digests in plain JavaScript: the engine cannot call back into Python while its time limit runs.
  const rotl = (x, n) => (x << n) | (x >>> (32 - n));
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  const pad = (bytes, bigEndian, lengthBytes) => {
    const data = bytes.slice();
    const bitLength = bytes.length * 8;
    data.push(0x80);
    while (data.length % (lengthBytes * 8) !== lengthBytes * 8 - lengthBytes) data.push(0);
    const length = [];
    for (let i = 0; i < lengthBytes; i++) length.push(i < 4 ? Math.floor(bitLength / 2 ** (8 * i)) & 255 : 0);
    return data.concat(bigEndian ? length.reverse() : length);
  };
  const words = (bytes, bigEndian) => {
    const out = [];
    for (let i = 0; i < bytes.length; i += 4) {
      out.push(bigEndian ? ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3])
                         : (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)));
    }
    return out;
  };
  const toBytes = (state, bigEndian) => {
    const out = [];
    for (const w of state) {
      for (let i = 0; i < 4; i++) out.push(bigEndian ? (w >>> (24 - 8 * i)) & 255 : (w >>> (8 * i)) & 255);
    }
    return out;
  };
  const md5 = (input) => {
    const K = [], S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
    for (let i = 0; i < 64; i++) K.push(Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
    const m = words(pad(input, false, 8), false);
    let [a0, b0, c0, d0] = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476];
    for (let j = 0; j < m.length; j += 16) {
      let [a, b, c, d] = [a0, b0, c0, d0];
      for (let i = 0; i < 64; i++) {
        let f, g;
        if (i < 16) { f = (b & c) | (~b & d); g = i; }
        else if (i < 32) { f = (d & b) | (~d & c); g = (5 * i + 1) % 16; }
        else if (i < 48) { f = b ^ c ^ d; g = (3 * i + 5) % 16; }
        else { f = c ^ (b | ~d); g = (7 * i) % 16; }
        const t = d; d = c; c = b;
        b = (b + rotl((a + f + K[i] + m[j + g]) | 0, S[(i >> 4) * 4 + (i % 4)])) | 0;
        a = t;
      }
      a0 = (a0 + a) | 0; b0 = (b0 + b) | 0; c0 = (c0 + c) | 0; d0 = (d0 + d) | 0;
    }
    return toBytes([a0, b0, c0, d0], false);
  };
  const sha1 = (input) => {
    const m = words(pad(input, true, 8), true);
    let h = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];
    for (let j = 0; j < m.length; j += 16) {
      const w = m.slice(j, j + 16);
      for (let i = 16; i < 80; i++) w.push(rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1));
      let [a, b, c, d, e] = h;
      for (let i = 0; i < 80; i++) {
        const [f, k] = i < 20 ? [(b & c) | (~b & d), 0x5a827999] : i < 40 ? [b ^ c ^ d, 0x6ed9eba1]
          : i < 60 ? [(b & c) | (b & d) | (c & d), 0x8f1bbcdc | 0] : [b ^ c ^ d, 0xca62c1d6 | 0];
        const t = (rotl(a, 5) + f + e + k + w[i]) | 0;
        e = d; d = c; c = rotl(b, 30); b = a; a = t;
      }
      h = [h[0] + a, h[1] + b, h[2] + c, h[3] + d, h[4] + e].map((x) => x | 0);
    }
    return toBytes(h, true);
  };
  const primes = (count) => {
    const out = [];
    for (let n = 2; out.length < count; n++) if (out.every((p) => n % p !== 0)) out.push(n);
    return out;
  };
  const frac32 = (x) => Math.floor((x - Math.floor(x)) * 2 ** 32) | 0;
  const sha256 = (input) => {
    const P = primes(64), K = P.map((p) => frac32(Math.cbrt(p)));
    let h = P.slice(0, 8).map((p) => frac32(Math.sqrt(p)));
    const m = words(pad(input, true, 8), true);
    for (let j = 0; j < m.length; j += 16) {
      const w = m.slice(j, j + 16);
      for (let i = 16; i < 64; i++) {
        const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
        const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
        w.push((w[i - 16] + s0 + w[i - 7] + s1) | 0);
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h = [h[0] + a, h[1] + b, h[2] + c, h[3] + d, h[4] + e, h[5] + f, h[6] + g, h[7] + hh].map((x) => x | 0);
    }
    return toBytes(h, true);
  };
  const sha512 = (input) => {
    const M = (1n << 64n) - 1n;
    const r = (x, n) => ((x >> n) | (x << (64n - n))) & M;
    const K = __SHA512_K__.map((x) => BigInt("0x" + x));
    let h = __SHA512_H__.map((x) => BigInt("0x" + x));
    const data = pad(input, true, 16);
    for (let j = 0; j < data.length; j += 128) {
      const w = [];
      for (let i = 0; i < 16; i++) {
        let x = 0n;
        for (let b = 0; b < 8; b++) x = (x << 8n) | BigInt(data[j + 8 * i + b]);
        w.push(x);
      }
      for (let i = 16; i < 80; i++) {
        const s0 = r(w[i - 15], 1n) ^ r(w[i - 15], 8n) ^ (w[i - 15] >> 7n);
        const s1 = r(w[i - 2], 19n) ^ r(w[i - 2], 61n) ^ (w[i - 2] >> 6n);
        w.push((w[i - 16] + s0 + w[i - 7] + s1) & M);
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 80; i++) {
        const t1 = (hh + (r(e, 14n) ^ r(e, 18n) ^ r(e, 41n)) + ((e & f) ^ (~e & M & g)) + K[i] + w[i]) & M;
        const t2 = ((r(a, 28n) ^ r(a, 34n) ^ r(a, 39n)) + ((a & b) ^ (a & c) ^ (b & c))) & M;
        hh = g; g = f; f = e; e = (d + t1) & M; d = c; c = b; b = a; a = (t1 + t2) & M;
      }
      h = [a, b, c, d, e, f, g, hh].map((x, i) => (h[i] + x) & M);
    }
    const out = [];
    for (const x of h) for (let b = 7; b >= 0; b--) out.push(Number((x >> BigInt(8 * b)) & 255n));
    return out;
  };
  const digests = { MD5: md5, Sha1: sha1, Sha256: sha256, Sha512: sha512 };
  const crypto = {};
  for (const [algo, digest] of Object.entries(digests)) {
    crypto[algo + "HexString"] = (value) => hex(digest(bytesOf(value)));
    crypto[algo + "Bytes"] = (value) => digest(bytesOf(value));
  }
  return Object.freeze(crypto);
};
"""


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % prime for prime in found):
            found.append(candidate)
        candidate += 1
    return found


def _root_bits(value: int, degree: int) -> str:
    """The first 64 fractional bits of ``value ** (1 / degree)``, in hex (SHA-512's constants, by integer math)."""
    scaled = value << (64 * degree)
    low, high = 0, 1 << (scaled.bit_length() // degree + 2)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if middle ** degree <= scaled else (low, middle - 1)
    return format(low & ((1 << 64) - 1), "016x")


_CRYPTO: Final = _CRYPTO_SOURCE.replace("__SHA512_K__", json.dumps([_root_bits(p, 3) for p in _primes(80)])).replace(
    "__SHA512_H__", json.dumps([_root_bits(p, 2) for p in _primes(8)]))
"""``mcUtils.crypto``'s digests (MD5, SHA-1, SHA-256, SHA-512) in plain JavaScript: the engine cannot call back into
Python while its time limit runs. Compiled only for scripts that name ``crypto`` (a few milliseconds saved a run)."""
_NO_CRYPTO: Final = "globalThis.__mc_crypto = () => Object.freeze({});"

_PRELUDE: Final = r"""
(function () {
  "use strict";
  const wrap = function (value) {
    if (value === null || typeof value !== "object") return value;
    return new Proxy(value, {
      get(target, key, receiver) {
        if (typeof key !== "string" || key in target) return wrap(Reflect.get(target, key, receiver));
        const lower = key.toLowerCase();
        for (const own of Object.keys(target)) if (own.toLowerCase() === lower) return wrap(target[own]);
        return undefined;
      },
      has(target, key) {
        if (typeof key !== "string" || key in target) return key in target;
        const lower = key.toLowerCase();
        return Object.keys(target).some((own) => own.toLowerCase() === lower);
      },
    });
  };
  const text = (value) => JSON.stringify(value === undefined ? null : value);
  const console = {};
  const logs = [];
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    console[level] = (...args) => {
      const line = args.map((a) => (typeof a === "string" ? a : text(a))).join(" ");
      if (logs.length < __MAX_LOGS__) logs.push(level + ": " + line.slice(0, 500));
    };
  }
  const utf8 = (s) => Array.from(new TextEncoderLite().encode(String(s)));
  function TextEncoderLite() {}
  TextEncoderLite.prototype.encode = function (s) {
    const out = [];
    for (const ch of s) {
      let c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return out;
  };
  const fromUtf8 = (bytes) => {
    let out = "", i = 0;
    while (i < bytes.length) {
      const b = bytes[i++] & 255;
      if (b < 0x80) out += String.fromCodePoint(b);
      else if (b < 0xe0) out += String.fromCodePoint(((b & 31) << 6) | (bytes[i++] & 63));
      else if (b < 0xf0) {
        out += String.fromCodePoint(((b & 15) << 12) | ((bytes[i++] & 63) << 6) | (bytes[i++] & 63));
      } else {
        const high = ((b & 7) << 18) | ((bytes[i++] & 63) << 12);
        out += String.fromCodePoint(high | ((bytes[i++] & 63) << 6) | (bytes[i++] & 63));
      }
    }
    return out;
  };
  const bytesOf = (value) => (Array.isArray(value) ? value.map((b) => b & 255) : utf8(value));
  const hex = (bytes) => bytesOf(bytes).map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  const unhex = (s) => {
    const clean = String(s).replace(/^0x/i, "");
    const out = [];
    for (let i = 0; i + 1 < clean.length; i += 2) out.push(parseInt(clean.substr(i, 2), 16));
    return out;
  };
  const convert = {
    ToString: (value) => (Array.isArray(value) ? fromUtf8(value) : typeof value === "string" ? value : text(value)),
    ToBytes: (value) => bytesOf(value),
    ToHexString: (value) => hex(value),
    HexStringToBytes: (value) => unhex(value),
    HexStringToString: (value) => fromUtf8(unhex(value)),
    ToStringFromBase64: (value) => fromUtf8(Array.from(atob(String(value)), (c) => c.charCodeAt(0))),
  };
  for (const [bits, getter] of [[16, "Uint16"], [32, "Uint32"], [64, "BigUint64"]]) {
    for (const signed of [false, true]) {
      for (const [suffix, little] of [["LE", true], ["BE", false]]) {
        const name = `To${signed ? "Int" : "UInt"}${bits}${suffix}`;
        const read = signed ? getter.replace("Uint", "Int").replace("BigUint", "BigInt") : getter;
        convert[name] = (bytes) => {
          const data = bytesOf(bytes).slice(0, bits / 8);
          while (data.length < bits / 8) little ? data.push(0) : data.unshift(0);
          const view = new DataView(new Uint8Array(data).buffer);
          const value = view["get" + read](0, little);
          return typeof value === "bigint" ? Number(value) : value;
        };
      }
    }
  }
  const noIo = () => {
    throw new Error("mcUtils.httpClient is not available: scripts have no I/O here (use a webhook variable)");
  };
  globalThis.console = console;
  globalThis.mcUtils = Object.freeze({ convert: Object.freeze(convert), crypto: __mc_crypto(bytesOf, hex),
                                       httpClient: Object.freeze({ New: noIo }) });
  globalThis.require = (name) => { throw new Error("require(" + text(name) + ") is not available in scripts"); };
  globalThis.__mc_wrap = wrap;
  globalThis.__mc_logs = logs;
})();
"""

def _engine() -> Any:
    try:
        import quickjs
    except ImportError:  # a deployment without the wheel: scripts fail alone, with the reason
        raise ScriptError("JavaScript is not available on this server (the quickjs-ng package is missing)") from None
    return quickjs


def _json_safe(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)


def _problem(error: Exception, limits: ScriptLimits) -> ScriptError:
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    lowered = text.lower()
    if "interrupted" in lowered:
        return ScriptLimitError(f"script ran longer than {limits.max_seconds:g}s")
    if "out of memory" in lowered or lowered in ("", "null"):  # no memory left even for the error's message
        return ScriptLimitError(f"script used more than {limits.max_memory_bytes // (1024 * 1024)} MB")
    if "stack overflow" in lowered or type(error).__name__ == "StackOverflow":
        return ScriptLimitError("script recursed too deeply")
    return ScriptError(f"script failed: {first[:300]}")


def check_script(source: str, limits: ScriptLimits = DEFAULT_LIMITS) -> None:
    """Raise ``ScriptError`` when ``source`` does not compile (nothing of it runs). Without the engine, nothing is
    checked: the run says why it cannot run."""
    if not isinstance(source, str) or not source.strip():
        raise ScriptError("script is empty")
    if len(source) > limits.max_source:
        raise ScriptLimitError(f"script is {len(source)} characters; at most {limits.max_source}")
    try:
        quickjs = _engine()
    except ScriptError:
        return
    context = quickjs.Context()
    context.set_memory_limit(limits.max_memory_bytes)
    context.set_time_limit(limits.max_seconds)
    try:
        context.eval(f"new Function({_json_safe(source)})")
    except Exception as error:  # a SyntaxError, said by the engine
        raise _problem(error, limits) from None


def run_script(source: str, variables: Mapping[str, Any], limits: ScriptLimits = DEFAULT_LIMITS) -> Any:
    """The value of the script's last expression (JSON-shaped: objects as dicts), the ``variables`` given as
    globals (each answering its keys case-insensitively). ``ScriptError`` when it fails, ``ScriptLimitError`` when a
    limit stopped it."""
    if not isinstance(source, str) or not source.strip():
        raise ScriptError("script is empty")
    if len(source) > limits.max_source:
        raise ScriptLimitError(f"script is {len(source)} characters; at most {limits.max_source}")
    quickjs = _engine()
    context = quickjs.Context()
    context.set_memory_limit(limits.max_memory_bytes)
    context.set_max_stack_size(limits.max_stack_bytes)
    context.set_time_limit(limits.max_seconds)
    try:
        context.eval(_CRYPTO if "crypto" in source else _NO_CRYPTO)
        context.eval(_PRELUDE.replace("__MAX_LOGS__", str(limits.max_log_lines)))
        for name, value in variables.items():
            if not name.isidentifier() or name.startswith("__"):
                continue
            context.eval(f"globalThis[{_json_safe(name)}] = __mc_wrap(JSON.parse({_json_safe(_json_safe(value))}));")
        try:
            result = context.eval(source)
        finally:
            _flush_logs(context)
        if hasattr(result, "json"):
            encoded = result.json()
            if encoded is None or len(encoded) > limits.max_result_bytes:
                raise ScriptLimitError(f"script result is larger than {limits.max_result_bytes} bytes")
            return json.loads(encoded)
        return result
    except ScriptError:
        raise
    except Exception as error:  # the engine's exceptions (JSException, StackOverflow)
        raise _problem(error, limits) from None


def _flush_logs(context: Any) -> None:
    """What the script wrote with ``console``, to our log (the engine cannot call Python while its time limit
    runs, so the lines wait in the script until it ends)."""
    try:
        lines = json.loads(context.eval("JSON.stringify(__mc_logs)") or "[]")
    except Exception:  # a script that broke its own log: nothing to say
        return
    for line in lines:
        log.info("script %s", str(line)[:500])


def limits_for(labels: Mapping[str, str] | None) -> ScriptLimits:
    """The limits of a task or schedule: its ``script_timeout`` label (the reference's, e.g. ``5s``) within
    ``MAX_TIMEOUT_S``; the defaults otherwise."""
    from .clock import parse_duration

    text = (labels or {}).get("script_timeout")
    if not text:
        return DEFAULT_LIMITS
    try:
        seconds = parse_duration(str(text)).total_seconds()
    except ValueError:
        return DEFAULT_LIMITS
    return ScriptLimits(max_seconds=max(0.01, min(seconds, MAX_TIMEOUT_S)))
