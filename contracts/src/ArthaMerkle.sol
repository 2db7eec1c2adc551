// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ArthaMerkle
/// @notice The keccak Merkle trees of artha-core (`artha_core::merkle`):
/// leaf = keccak256(0x00 ‖ record), node = keccak256(0x01 ‖ left ‖ right);
/// levels are built left to right and an unpaired last node is promoted.
library ArthaMerkle {
    /// @notice A record's encoding has the wrong length or tag.
    error MalformedRecord();

    /// @notice Length of a StepRecord encoding.
    uint256 internal constant STEP_RECORD_LEN = 117;

    /// @notice keccak256(0x00 ‖ data).
    function leafHash(bytes memory data) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @notice keccak256(0x01 ‖ left ‖ right).
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x01), left, right));
    }

    /// @notice The root that `leaf` at `index` of `count` leaves and its
    /// bottom-up `siblings` lead to; `bytes32(0)` when the proof is malformed.
    function computeRoot(bytes32 leaf, uint256 index, uint256 count, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32)
    {
        if (count == 0 || index >= count) return bytes32(0);
        bytes32 h = leaf;
        uint256 used = 0;
        while (count > 1) {
            if (!(index == count - 1 && count % 2 == 1)) {
                if (used >= siblings.length) return bytes32(0);
                bytes32 s = siblings[used++];
                h = index % 2 == 0 ? nodeHash(h, s) : nodeHash(s, h);
            }
            index >>= 1;
            count = (count + 1) / 2;
        }
        if (used != siblings.length) return bytes32(0);
        return h;
    }

    /// @notice Whether `leaf` is at `index` of the `count`-leaf tree with `root`.
    function verify(bytes32 root, bytes32 leaf, uint256 index, uint256 count, bytes32[] memory siblings)
        internal
        pure
        returns (bool)
    {
        return root != bytes32(0) && computeRoot(leaf, index, count, siblings) == root;
    }

    /// @notice The step number (u64 little endian at bytes 1..9) of a StepRecord.
    function stepNumber(bytes memory rec) internal pure returns (uint64 step) {
        if (rec.length != STEP_RECORD_LEN || rec[0] != 0x01) revert MalformedRecord();
        for (uint256 i = 0; i < 8; i++) {
            step |= uint64(uint8(rec[1 + i])) << (8 * i);
        }
    }
}
