// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ArthaMerkle
/// @notice The keccak Merkle trees and proof records of artha-core
/// (`artha_core::merkle`, `artha_core::proof`), bit for bit:
///
/// - leaf = keccak256(0x00 ‖ record), node = keccak256(0x01 ‖ left ‖ right);
/// - a tree is built level by level, pairing adjacent nodes left to right;
///   an unpaired last node is promoted unchanged; one leaf is its own root;
///   zero leaves have no root;
/// - an inclusion proof is the list of siblings bottom-up (none consumed
///   at a level where the node is promoted);
/// - a window root is the tree over a window's step leaves; the job root is
///   the tree over the window roots used directly as level-0 nodes.
///
/// Records (integers little endian): StepRecord (117 bytes) = 0x01 ‖ step
/// u64 ‖ epoch u32 ‖ loss f64 bits u64 ‖ grad[32] ‖ weights[32] ‖ batch[32];
/// InferRecord (65) = 0x02 ‖ input[32] ‖ output[32]; CompleteRecord (49) =
/// 0x03 ‖ steps u64 ‖ gpu_seconds u64 ‖ final_weights[32].
library ArthaMerkle {
    /// @notice A record's encoding has the wrong length or tag.
    error MalformedRecord();

    /// @notice Tag byte of a StepRecord.
    uint8 internal constant STEP_TAG = 0x01;
    /// @notice Length of a StepRecord encoding.
    uint256 internal constant STEP_RECORD_LEN = 117;

    /// @notice keccak256(0x00 ‖ data).
    function leafHash(bytes memory data) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @notice keccak256(0x01 ‖ left ‖ right).
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            // 65 bytes at the free memory pointer (not reserved: scratch use).
            let p := mload(0x40)
            mstore8(p, 0x01)
            mstore(add(p, 1), left)
            mstore(add(p, 33), right)
            h := keccak256(p, 65)
        }
    }

    /// @notice The root that `leaf` at `index` of `count` leaves and its
    /// bottom-up `siblings` lead to; `bytes32(0)` when the proof is malformed
    /// (index out of range, too few or too many siblings).
    function computeRoot(bytes32 leaf, uint256 index, uint256 count, bytes32[] memory siblings)
        internal
        pure
        returns (bytes32)
    {
        if (count == 0 || index >= count) return bytes32(0);
        bytes32 h = leaf;
        uint256 used = 0;
        while (count > 1) {
            // The last node of an odd level is promoted: no sibling.
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

    /// @notice Whether `leaf` is at `index` of the `count`-leaf tree with
    /// `root`, by the bottom-up `siblings`, which must all be consumed.
    function verify(bytes32 root, bytes32 leaf, uint256 index, uint256 count, bytes32[] memory siblings)
        internal
        pure
        returns (bool)
    {
        return root != bytes32(0) && computeRoot(leaf, index, count, siblings) == root;
    }

    /// @notice The root of the tree over `nodes` (leaf hashes, or window
    /// roots for a job root); `bytes32(0)` for no nodes. Overwrites `nodes`.
    function rootOf(bytes32[] memory nodes) internal pure returns (bytes32) {
        uint256 n = nodes.length;
        if (n == 0) return bytes32(0);
        while (n > 1) {
            uint256 next = 0;
            for (uint256 i = 0; i + 1 < n; i += 2) {
                nodes[next++] = nodeHash(nodes[i], nodes[i + 1]);
            }
            if (n % 2 == 1) nodes[next++] = nodes[n - 1];
            n = next;
        }
        return nodes[0];
    }

    /// @notice The step number of a StepRecord (u64 little endian at bytes
    /// 1..9); reverts `MalformedRecord` unless 117 bytes with tag 0x01.
    function stepNumber(bytes memory rec) internal pure returns (uint64 step) {
        if (rec.length != STEP_RECORD_LEN || uint8(rec[0]) != STEP_TAG) revert MalformedRecord();
        uint256 v;
        for (uint256 i = 0; i < 8; i++) {
            v |= uint256(uint8(rec[1 + i])) << (8 * i);
        }
        step = uint64(v);
    }
}
