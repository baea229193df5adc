// snapshot.hpp: the row format of an environment's snapshot (AtariEnv::save / load), and the
// checks that refuse a row that is not a state of the env it is restored into.
//
// A row is a header (SnapshotHeader, 96 bytes) and a payload: the env's episode state, its
// RNGs, its frame stack and pooling buffers, then ALE's own serialized state (emulator, game
// settings, last actions and, with include_rng, the sticky-action RNG). Rows of one env
// configuration and game all have the same width (AtariEnv::snapshot_bytes()); unused bytes
// at the end are zero. The header names what the row belongs to (format version, build,
// game, settings) and carries a checksum of the payload, so a row from another game, another
// setting, another build, a truncated copy or random bytes is refused with a message that
// says which, before anything is changed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace atari_vec {

// Bump whenever the payload's layout changes: rows of another version are refused.
// 2: the pooled frame only (the second pool buffer and a flag dropped, 5d641b0).
constexpr uint32_t kSnapshotVersion = 2;

struct SnapshotHeader {
  char magic[8];             // kSnapshotMagic
  uint32_t version;          // kSnapshotVersion
  uint32_t header_bytes;     // sizeof(SnapshotHeader)
  uint64_t row_bytes;        // the width of the row this was written into
  uint64_t build_hash;       // snapshot_build_hash() of the writer
  uint64_t rom_hash;         // the game: the first 8 bytes of the ROM's MD5
  uint64_t config_hash;      // EnvConfig::fingerprint() of the writer
  uint32_t payload_bytes;    // bytes after the header that are used
  uint32_t ale_bytes;        // of which ALE's serialized state (the payload's tail)
  uint32_t flags;            // SnapshotFlags
  uint32_t reserved;         // zero
  uint64_t checksum;         // snapshot_checksum of the payload
  char game[24];             // the ROM's name, for error messages (NUL-padded)
};
static_assert(sizeof(SnapshotHeader) == 96, "the header is part of the row format");
static_assert(std::is_trivially_copyable<SnapshotHeader>::value, "copied with memcpy");

constexpr char kSnapshotMagic[8] = {'A', 'T', 'V', 'S', 'N', 'A', 'P', '1'};

enum SnapshotFlags : uint32_t {
  kSnapshotIncludesRng = 1u << 0,   // ALE's sticky-action RNG is in the state
  kSnapshotResetUnshown = 1u << 1,  // the env was reset and the next step reports that reset
};

// 64-bit FNV-1a, for fingerprints (not for the payload: see snapshot_checksum).
inline uint64_t fnv1a(const void* data, std::size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

// A checksum of the payload that catches corruption, not an adversary: four independent
// multiply-xor lanes over 8-byte words, so a 10 KB row costs well under a microsecond.
uint64_t snapshot_checksum(const uint8_t* data, std::size_t n);

// Identifies the writer's build: the row format version, ALE's version and the sizes of the
// records the payload copies verbatim. Rows of another build are refused.
uint64_t snapshot_build_hash();

// Writes the payload sequentially into a row, bounds-checked.
class RowWriter {
 public:
  RowWriter(uint8_t* begin, std::size_t capacity) : begin_(begin), pos_(begin), end_(begin + capacity) {}
  void bytes(const void* src, std::size_t n) {
    if (static_cast<std::size_t>(end_ - pos_) < n) throw std::logic_error("snapshot row too small");
    std::memcpy(pos_, src, n);
    pos_ += n;
  }
  template <class T>
  void put(const T& value) {
    static_assert(std::is_arithmetic<T>::value, "write records field by field");
    bytes(&value, sizeof(T));
  }
  std::size_t written() const { return static_cast<std::size_t>(pos_ - begin_); }
  uint8_t* position() { return pos_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - pos_); }
  void skip(std::size_t n) {
    if (left() < n) throw std::logic_error("snapshot row too small");
    pos_ += n;
  }

 private:
  uint8_t* begin_;
  uint8_t* pos_;
  uint8_t* end_;
};

// Reads a payload written by RowWriter, bounds-checked.
class RowReader {
 public:
  RowReader(const uint8_t* begin, std::size_t size) : pos_(begin), end_(begin + size) {}
  void bytes(void* dst, std::size_t n) {
    if (static_cast<std::size_t>(end_ - pos_) < n) throw std::invalid_argument("snapshot payload is truncated");
    std::memcpy(dst, pos_, n);
    pos_ += n;
  }
  template <class T>
  T get() {
    static_assert(std::is_arithmetic<T>::value, "read records field by field");
    T value;
    bytes(&value, sizeof(T));
    return value;
  }
  const uint8_t* position() const { return pos_; }
  std::size_t left() const { return static_cast<std::size_t>(end_ - pos_); }

 private:
  const uint8_t* pos_;
  const uint8_t* end_;
};

// What a row must match to be restored into an env.
struct SnapshotIdentity {
  uint64_t rom_hash = 0;
  uint64_t config_hash = 0;
  std::string game;  // for messages
};

// Throws std::invalid_argument, saying why, unless row[0, width) is an intact snapshot of
// this build for `expected`'s game and settings, written into a row of this width.
void check_snapshot(const uint8_t* row, std::size_t width, const SnapshotIdentity& expected);

}  // namespace atari_vec
