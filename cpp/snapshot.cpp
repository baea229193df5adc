// snapshot.cpp: see snapshot.hpp.
#include "snapshot.hpp"

#include <ale/ale_interface.hpp>  // ALE_VERSION

#include <random>

#include "atari_env.hpp"
#include "reference_rng.hpp"

namespace atari_vec {

uint64_t snapshot_checksum(const uint8_t* data, std::size_t n) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t lane[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull,
                      0x082efa98ec4e6c89ull};
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int k = 0; k < 4; ++k) {
      uint64_t w;
      std::memcpy(&w, data + i + 8 * k, 8);
      lane[k] = (lane[k] ^ w) * kMul;
      lane[k] ^= lane[k] >> 29;
    }
  }
  uint64_t h = static_cast<uint64_t>(n) * kMul;
  for (int k = 0; k < 4; ++k) h = (h ^ lane[k]) * kMul;
  for (; i < n; ++i) h = (h ^ data[i]) * 0x100000001b3ull;
  return h ^ (h >> 31);
}

uint64_t snapshot_build_hash() {
  const std::string ale_version = ALE_VERSION;
  uint64_t h = fnv1a(ale_version.data(), ale_version.size());
  const uint64_t facts[] = {kSnapshotVersion, sizeof(SnapshotHeader), sizeof(std::mt19937),
                            sizeof(EpisodeState), sizeof(StepOutcome)};
  return fnv1a(facts, sizeof(facts), h);
}

void check_snapshot(const uint8_t* row, std::size_t width, const SnapshotIdentity& expected) {
  auto refuse = [](const std::string& why) { throw std::invalid_argument(why); };
  if (width < sizeof(SnapshotHeader)) {
    refuse("a state row has at least " + std::to_string(sizeof(SnapshotHeader)) + " bytes, got " +
           std::to_string(width));
  }
  SnapshotHeader h;
  std::memcpy(&h, row, sizeof(h));
  if (std::memcmp(h.magic, kSnapshotMagic, sizeof(h.magic)) != 0) {
    refuse("not an atari_vec state: the row does not start with its marker (random or "
           "foreign bytes?)");
  }
  if (h.version != kSnapshotVersion || h.header_bytes != sizeof(SnapshotHeader)) {
    refuse("state format version " + std::to_string(h.version) + ", but this build reads version " +
           std::to_string(kSnapshotVersion));
  }
  if (h.build_hash != snapshot_build_hash()) {
    refuse("the state was made by another build of atari_vec (another ALE version or layout); "
           "states can only be restored by the build that made them");
  }
  const std::string game(h.game, strnlen(h.game, sizeof(h.game)));
  if (h.rom_hash != expected.rom_hash) {
    refuse("the state is of another game (" + game + "), not of " + expected.game);
  }
  if (h.config_hash != expected.config_hash) {
    refuse("the state is of " + game + " with other settings (observation type, frame skip, "
           "stacking or episode rules differ from this env's)");
  }
  if (h.row_bytes != width) {
    refuse("the state row has " + std::to_string(width) + " bytes, but it was written as a row of " +
           std::to_string(h.row_bytes) + " (truncated or padded copy?)");
  }
  if (h.payload_bytes > width - sizeof(SnapshotHeader) || h.ale_bytes > h.payload_bytes) {
    refuse("corrupt state: its sizes do not fit the row");
  }
  if (snapshot_checksum(row + sizeof(SnapshotHeader), h.payload_bytes) != h.checksum) {
    refuse("corrupt state: the checksum of its contents does not match");
  }
  // The rest of the row is padding, written as zeros (checked a word at a time: rows are
  // checked once per walker step in planning).
  const uint8_t* pad = row + sizeof(SnapshotHeader) + h.payload_bytes;
  const std::size_t pad_bytes = width - sizeof(SnapshotHeader) - h.payload_bytes;
  uint64_t any = 0;
  std::size_t i = 0;
  for (; i + 8 <= pad_bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, pad + i, 8);
    any |= w;
  }
  for (; i < pad_bytes; ++i) any |= pad[i];
  if (any != 0) refuse("corrupt state: bytes after its contents are not zero");
}

}  // namespace atari_vec
