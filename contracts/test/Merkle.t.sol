// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";

/// @notice ArthaMerkle against an independent tree builder (the test's
/// `prove`), on every size and index, plus the record decoding.
contract MerkleTest is Fixture {
    /// External so a revert can be expected from a library call.
    function stepOf(bytes memory rec) external pure returns (uint64) {
        return ArthaMerkle.stepNumber(rec);
    }

    function leaves(uint256 n, bytes32 seed) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i = 0; i < n; i++) {
            l[i] = ArthaMerkle.leafHash(abi.encode(seed, i));
        }
    }

    function copy(bytes32[] memory a) internal pure returns (bytes32[] memory b) {
        b = new bytes32[](a.length);
        for (uint256 i = 0; i < a.length; i++) {
            b[i] = a[i];
        }
    }

    function testSmallTreesByHand() public pure {
        bytes32[] memory l = leaves(3, "s");
        bytes32 root = ArthaMerkle.nodeHash(ArthaMerkle.nodeHash(l[0], l[1]), l[2]);
        assertEq(ArthaMerkle.rootOf(copy(l)), root, "3 leaves: last promoted");
        bytes32[] memory none = new bytes32[](0);
        assertTrue(ArthaMerkle.verify(root, l[2], 2, 3, prove(l, 2)), "promoted leaf: one sibling");
        assertEq(prove(l, 2).length, 1, "promoted leaf consumes no sibling at level 0");
        bytes32[] memory one = leaves(1, "s");
        assertEq(ArthaMerkle.rootOf(copy(one)), one[0], "one leaf is its own root");
        assertTrue(ArthaMerkle.verify(one[0], one[0], 0, 1, none), "one-leaf proof is empty");
        assertEq(ArthaMerkle.rootOf(new bytes32[](0)), bytes32(0), "no root for zero leaves");
        assertEq(ArthaMerkle.nodeHash(l[0], l[1]), keccak256(abi.encodePacked(bytes1(0x01), l[0], l[1])), "node hash");
        assertEq(ArthaMerkle.leafHash(hex"beef"), keccak256(hex"00beef"), "leaf hash");
    }

    /// Every index of a tree of 1..64 leaves proves; wrong index, wrong
    /// count, a missing or an extra sibling, and a zero root all fail.
    function testFuzzProofsVerify(uint256 n, uint256 index, bytes32 seed) public pure {
        n = bound(n, 1, 64);
        index = bound(index, 0, n - 1);
        bytes32[] memory l = leaves(n, seed);
        bytes32 root = ArthaMerkle.rootOf(copy(l));
        bytes32[] memory sib = prove(l, index);
        assertTrue(ArthaMerkle.verify(root, l[index], index, n, sib), "proof verifies");
        assertTrue(!ArthaMerkle.verify(bytes32(0), l[index], index, n, sib), "zero root never verifies");
        assertTrue(!ArthaMerkle.verify(root, l[index], index, n + 64, sib), "wrong leaf count");
        assertTrue(!ArthaMerkle.verify(root, l[index], n, n, sib), "index out of range");
        if (n > 1) {
            assertTrue(!ArthaMerkle.verify(root, l[index], (index + 1) % n, n, sib), "wrong index");
            assertTrue(!ArthaMerkle.verify(root, l[(index + 1) % n], index, n, sib), "wrong leaf");
        }
        bytes32[] memory extra = new bytes32[](sib.length + 1);
        for (uint256 i = 0; i < sib.length; i++) {
            extra[i] = sib[i];
        }
        assertTrue(!ArthaMerkle.verify(root, l[index], index, n, extra), "extra sibling");
        if (sib.length > 0) {
            bytes32[] memory short = new bytes32[](sib.length - 1);
            for (uint256 i = 0; i < short.length; i++) {
                short[i] = sib[i];
            }
            assertTrue(!ArthaMerkle.verify(root, l[index], index, n, short), "missing sibling");
        }
    }

    /// The two-level job tree: a step leaf under its window root under the
    /// job root (window roots used directly as level-0 nodes).
    function testFuzzTwoLevelJobTree(uint256 steps, uint256 window, uint256 step, bytes32 seed) public pure {
        steps = bound(steps, 1, 200);
        window = bound(window, 1, 32);
        step = bound(step, 0, steps - 1);
        uint256 windows = (steps + window - 1) / window;
        bytes32[] memory windowRoots = new bytes32[](windows);
        bytes32[] memory inWindow;
        uint256 w = step / window;
        for (uint256 k = 0; k < windows; k++) {
            uint256 first = k * window;
            uint256 count = steps - first < window ? steps - first : window;
            bytes32[] memory l = new bytes32[](count);
            for (uint256 i = 0; i < count; i++) {
                l[i] = ArthaMerkle.leafHash(abi.encode(seed, first + i));
            }
            if (k == w) inWindow = copy(l);
            windowRoots[k] = ArthaMerkle.rootOf(l);
        }
        bytes32 jobRoot = ArthaMerkle.rootOf(copy(windowRoots));
        assertTrue(
            ArthaMerkle.verify(jobRoot, windowRoots[w], w, windows, prove(windowRoots, w)), "window under job root"
        );
        uint256 pos = step % window;
        assertTrue(
            ArthaMerkle.verify(windowRoots[w], inWindow[pos], pos, inWindow.length, prove(inWindow, pos)),
            "step under window root"
        );
    }

    function testFuzzStepNumberIsLittleEndian(uint64 step, bytes32 salt) public view {
        bytes memory r = rec(step, salt);
        assertEq(this.stepOf(r), step, "round trip");
        assertEq(uint8(r[1]), uint8(step & 0xff), "least significant byte first");
    }

    function testStepNumberRejectsMalformedRecords() public {
        bytes memory r = rec(7, "x");
        r[0] = 0x02;
        vm.expectRevert(ArthaMerkle.MalformedRecord.selector);
        this.stepOf(r);
        vm.expectRevert(ArthaMerkle.MalformedRecord.selector);
        this.stepOf(new bytes(116));
        vm.expectRevert(ArthaMerkle.MalformedRecord.selector);
        this.stepOf(new bytes(118));
        vm.expectRevert(ArthaMerkle.MalformedRecord.selector);
        this.stepOf("");
    }
}
