// reference_rng.hpp: the random streams of the reference stack, reproduced natively.
//
// ale-py's AtariEnv seeds itself from an integer s as follows: NumPy's SeedSequence(s) gives
// two 32-bit words (np_seed, ale_seed); ALE's "random_seed" becomes ale_seed (as an int32),
// and the env's np_random becomes Generator(PCG64(SeedSequence(np_seed))). Gymnasium's
// AtariPreprocessing then draws its no-op count with np_random.integers(1, noop_max + 1), and
// a stochastic frameskip is np_random.integers(low, high) on every step. This header
// implements exactly those pieces of NumPy (SeedSequence's hash mixing, PCG64 with its
// buffered 32-bit output, and Lemire's bounded integers as Generator.integers uses them for
// int64 ranges below 2**32), so that a seed means here what it means there.
//
// Plain values; one thread at a time per object. Nothing allocates.
#pragma once

#include <array>
#include <cstdint>

namespace atari_vec {

// NumPy's SeedSequence(entropy) with no spawn key, restricted to entropy below 2**64 (given
// as its little-endian 32-bit words, one word when it fits). generate_state(n_words) of 32-bit
// words.
class SeedSequence {
 public:
  explicit SeedSequence(uint64_t entropy) {
    const uint32_t words[2] = {static_cast<uint32_t>(entropy), static_cast<uint32_t>(entropy >> 32)};
    const int n = (entropy >> 32) ? 2 : 1;
    uint32_t hash = kInitA;
    for (int i = 0; i < kPoolSize; ++i) pool_[i] = hashmix(i < n ? words[i] : 0u, hash);
    for (int src = 0; src < kPoolSize; ++src) {
      for (int dst = 0; dst < kPoolSize; ++dst) {
        if (src != dst) pool_[dst] = mix(pool_[dst], hashmix(pool_[src], hash));
      }
    }
    // Entropy longer than the pool would be mixed in here; ours never is (at most 2 words).
  }

  void generate_state(uint32_t* out, int n_words) const {
    uint32_t hash = kInitB;
    for (int i = 0; i < n_words; ++i) {
      uint32_t v = pool_[i % kPoolSize];
      v ^= hash;
      hash *= kMultB;
      v *= hash;
      v ^= v >> kXShift;
      out[i] = v;
    }
  }

 private:
  static constexpr int kPoolSize = 4;
  static constexpr uint32_t kInitA = 0x43b0d7e5u, kMultA = 0x931e8875u;
  static constexpr uint32_t kInitB = 0x8b51f9ddu, kMultB = 0x58f38dedu;
  static constexpr uint32_t kMixMultL = 0xca01f9ddu, kMixMultR = 0x4973f715u;
  static constexpr int kXShift = 16;

  static uint32_t hashmix(uint32_t value, uint32_t& hash) {
    value ^= hash;
    hash *= kMultA;
    value *= hash;
    value ^= value >> kXShift;
    return value;
  }
  static uint32_t mix(uint32_t x, uint32_t y) {
    uint32_t r = kMixMultL * x - kMixMultR * y;
    r ^= r >> kXShift;
    return r;
  }

  uint32_t pool_[kPoolSize];
};

// NumPy's PCG64 bit generator (XSL-RR 128/64) seeded from a SeedSequence, with the 32-bit
// buffering of its next_uint32, and Generator.integers(low, high) for int64 results.
class Pcg64 {
 public:
  Pcg64() { seed(0); }

  // PCG64(SeedSequence(entropy)).
  void seed(uint64_t entropy) {
    uint32_t w[8];
    SeedSequence(entropy).generate_state(w, 8);
    // generate_state(4, uint64) is the 32-bit words read as little-endian 64-bit ones.
    uint64_t v[4];
    for (int i = 0; i < 4; ++i) v[i] = static_cast<uint64_t>(w[2 * i]) | (static_cast<uint64_t>(w[2 * i + 1]) << 32);
    const u128 initstate = (static_cast<u128>(v[0]) << 64) | v[1];
    const u128 initseq = (static_cast<u128>(v[2]) << 64) | v[3];
    state_ = 0;
    inc_ = (initseq << 1) | 1;
    step();
    state_ += initstate;
    step();
    has_uint32_ = false;
    uinteger_ = 0;
  }

  uint64_t next64() {
    step();
    const uint64_t hi = static_cast<uint64_t>(state_ >> 64);
    const uint64_t lo = static_cast<uint64_t>(state_);
    const unsigned rot = static_cast<unsigned>(state_ >> 122);
    const uint64_t x = hi ^ lo;
    return (x >> rot) | (x << ((64 - rot) & 63));
  }

  uint32_t next32() {
    if (has_uint32_) {
      has_uint32_ = false;
      return uinteger_;
    }
    const uint64_t next = next64();
    has_uint32_ = true;
    uinteger_ = static_cast<uint32_t>(next >> 32);
    return static_cast<uint32_t>(next);
  }

  // Generator.integers(low, high): uniform in [low, high), high - low <= 2**32.
  int64_t integers(int64_t low, int64_t high) {
    const uint64_t rng = static_cast<uint64_t>(high - low - 1);
    if (rng == 0) return low;  // NumPy draws nothing for a one-value range
    if (rng == 0xffffffffull) return low + static_cast<int64_t>(next32());
    const uint32_t excl = static_cast<uint32_t>(rng) + 1;
    uint64_t m = static_cast<uint64_t>(next32()) * excl;
    uint32_t leftover = static_cast<uint32_t>(m);
    if (leftover < excl) {
      const uint32_t threshold = (0xffffffffu - static_cast<uint32_t>(rng)) % excl;
      while (leftover < threshold) {
        m = static_cast<uint64_t>(next32()) * excl;
        leftover = static_cast<uint32_t>(m);
      }
    }
    return low + static_cast<int64_t>(m >> 32);
  }

 private:
  using u128 = unsigned __int128;
  static constexpr u128 kMultiplier =
      (static_cast<u128>(0x2360ed051fc65da4ull) << 64) | 0x4385df649fccf645ull;

  void step() { state_ = state_ * kMultiplier + inc_; }

 public:
  // The whole generator as five words (for snapshots): state, increment, buffered output.
  using Words = std::array<uint64_t, 5>;
  Words words() const {
    return {static_cast<uint64_t>(state_ >> 64), static_cast<uint64_t>(state_),
            static_cast<uint64_t>(inc_ >> 64), static_cast<uint64_t>(inc_),
            (static_cast<uint64_t>(has_uint32_) << 32) | uinteger_};
  }
  void set_words(const Words& w) {
    state_ = (static_cast<u128>(w[0]) << 64) | w[1];
    inc_ = (static_cast<u128>(w[2]) << 64) | w[3];
    has_uint32_ = (w[4] >> 32) != 0;
    uinteger_ = static_cast<uint32_t>(w[4]);
  }

 private:
  u128 state_ = 0;
  u128 inc_ = 1;
  bool has_uint32_ = false;
  uint32_t uinteger_ = 0;
};

// The two seeds ale-py's AtariEnv.seed_game derives from `seed`: (np_seed, ale_seed).
struct ReferenceSeeds {
  uint32_t np_seed;
  uint32_t ale_seed;
};

inline ReferenceSeeds reference_seeds(uint64_t seed) {
  uint32_t w[2];
  SeedSequence(seed).generate_state(w, 2);
  return {w[0], w[1]};
}

}  // namespace atari_vec
