// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";

/// @notice The Solidity encoding and Merkle code agree with artha-core on the
/// cross-language vectors that the Rust side writes
/// (artha-core/tests/vectors/proofs.json, format artha-proof-vectors/1).
contract VectorsTest is Test {
    string constant PATH = "../artha-core/tests/vectors/proofs.json";
    string json;

    function setUp() public {
        json = vm.readFile(PATH);
    }

    function key(string memory a, uint256 i, string memory b) internal pure returns (string memory) {
        return string.concat(a, "[", vm.toString(i), "]", b);
    }

    /// A digest field: hex with or without 0x.
    function digest(string memory k) internal view returns (bytes32) {
        bytes memory s = bytes(vm.parseJsonString(json, k));
        if (s.length == 66) return vm.parseBytes32(string(s));
        return vm.parseBytes32(string.concat("0x", string(s)));
    }

    /// `n` bytes of `enc` from `at` as a little-endian integer.
    function le(bytes memory enc, uint256 at, uint256 n) internal pure returns (uint256 v) {
        for (uint256 i = 0; i < n; i++) {
            v |= uint256(uint8(enc[at + i])) << (8 * i);
        }
    }

    function word(bytes memory enc, uint256 at) internal pure returns (bytes32 w) {
        assembly ("memory-safe") {
            w := mload(add(add(enc, 32), at))
        }
    }

    function testFormat() public view {
        assertEq(keccak256(bytes(vm.parseJsonString(json, ".format"))), keccak256("artha-proof-vectors/1"), "format");
    }

    function testStepRecords() public view {
        uint256 i = 0;
        for (; vm.keyExistsJson(json, key(".step_records", i, "")); i++) {
            bytes memory enc = vm.parseJsonBytes(json, key(".step_records", i, ".encoding"));
            assertEq(enc.length, 117, "StepRecord is 117 bytes");
            assertEq(uint8(enc[0]), 0x01, "tag");
            assertEq(ArthaMerkle.leafHash(enc), vm.parseJsonBytes32(json, key(".step_records", i, ".leaf")), "leaf");
            uint256 step = vm.parseJsonUint(json, key(".step_records", i, ".step"));
            assertEq(ArthaMerkle.stepNumber(enc), step, "step u64 LE at 1");
            assertEq(le(enc, 1, 8), step, "step u64 LE at 1");
            assertEq(le(enc, 9, 4), vm.parseJsonUint(json, key(".step_records", i, ".epoch")), "epoch u32 LE at 9");
            if (vm.keyExistsJson(json, key(".step_records", i, ".grad_digest"))) {
                assertEq(word(enc, 21), digest(key(".step_records", i, ".grad_digest")), "grad at 21");
                assertEq(word(enc, 53), digest(key(".step_records", i, ".weight_digest")), "weights at 53");
                assertEq(word(enc, 85), digest(key(".step_records", i, ".batch_digest")), "batch at 85");
            }
        }
        assertTrue(i > 0, "step records present");
    }

    function testInferRecords() public view {
        uint256 i = 0;
        for (; vm.keyExistsJson(json, key(".infer_records", i, "")); i++) {
            bytes memory enc = vm.parseJsonBytes(json, key(".infer_records", i, ".encoding"));
            assertEq(enc.length, 65, "InferRecord is 65 bytes");
            assertEq(uint8(enc[0]), 0x02, "tag");
            assertEq(ArthaMerkle.leafHash(enc), vm.parseJsonBytes32(json, key(".infer_records", i, ".leaf")), "leaf");
            if (vm.keyExistsJson(json, key(".infer_records", i, ".input_digest"))) {
                assertEq(word(enc, 1), digest(key(".infer_records", i, ".input_digest")), "input at 1");
                assertEq(word(enc, 33), digest(key(".infer_records", i, ".output_digest")), "output at 33");
            }
        }
        assertTrue(i > 0, "infer records present");
    }

    function testCompleteRecords() public view {
        uint256 i = 0;
        for (; vm.keyExistsJson(json, key(".complete_records", i, "")); i++) {
            bytes memory enc = vm.parseJsonBytes(json, key(".complete_records", i, ".encoding"));
            assertEq(enc.length, 49, "CompleteRecord is 49 bytes");
            assertEq(uint8(enc[0]), 0x03, "tag");
            assertEq(ArthaMerkle.leafHash(enc), vm.parseJsonBytes32(json, key(".complete_records", i, ".leaf")), "leaf");
            assertEq(le(enc, 1, 8), vm.parseJsonUint(json, key(".complete_records", i, ".steps")), "steps LE at 1");
            assertEq(
                le(enc, 9, 8),
                vm.parseJsonUint(json, key(".complete_records", i, ".gpu_seconds")),
                "gpu_seconds LE at 9"
            );
            if (vm.keyExistsJson(json, key(".complete_records", i, ".final_weights"))) {
                assertEq(word(enc, 17), digest(key(".complete_records", i, ".final_weights")), "weights at 17");
            }
        }
        assertTrue(i > 0, "complete records present");
    }

    /// Roots and every proof of the 1, 2, 3, 5, 8 and 13-leaf cases.
    function testMerkleRootsAndProofs() public view {
        uint256 cases = 0;
        uint256[6] memory sizes = [uint256(1), 2, 3, 5, 8, 13];
        for (uint256 c = 0; vm.keyExistsJson(json, key(".merkle", c, "")); c++) {
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, key(".merkle", c, ".leaves"));
            bytes32 root = vm.parseJsonBytes32(json, key(".merkle", c, ".root"));
            assertEq(leaves.length, sizes[c], "case sizes 1, 2, 3, 5, 8, 13");
            bytes32[] memory scratch = new bytes32[](leaves.length);
            for (uint256 i = 0; i < leaves.length; i++) {
                scratch[i] = leaves[i];
            }
            assertEq(ArthaMerkle.rootOf(scratch), root, "root");
            uint256 proofs = 0;
            for (uint256 i = 0; vm.keyExistsJson(json, key(key(".merkle", c, ".proofs"), i, "")); i++) {
                string memory p = key(key(".merkle", c, ".proofs"), i, "");
                bytes32[] memory sib = vm.parseJsonBytes32Array(json, string.concat(p, ".siblings"));
                uint256 index = vm.parseJsonUint(json, string.concat(p, ".index"));
                assertTrue(ArthaMerkle.verify(root, leaves[index], index, leaves.length, sib), "proof verifies");
                if (leaves.length > 1) {
                    assertTrue(
                        !ArthaMerkle.verify(root, leaves[index], (index + 1) % leaves.length, leaves.length, sib),
                        "wrong index fails"
                    );
                }
                proofs++;
            }
            assertEq(proofs, leaves.length, "every index has a proof");
            cases++;
        }
        assertEq(cases, 6, "six merkle cases");
    }

    /// Job trees (when the file has them): window roots over the step
    /// leaves in windows of `window`, job root over the window roots.
    function testJobTrees() public view {
        for (uint256 t = 0; vm.keyExistsJson(json, key(".job_trees", t, "")); t++) {
            bytes32[] memory steps = vm.parseJsonBytes32Array(json, key(".job_trees", t, ".step_leaves"));
            bytes32[] memory wr = vm.parseJsonBytes32Array(json, key(".job_trees", t, ".window_roots"));
            uint256 window = vm.parseJsonUint(json, key(".job_trees", t, ".window"));
            assertEq(wr.length, (steps.length + window - 1) / window, "window count");
            for (uint256 w = 0; w < wr.length; w++) {
                uint256 first = w * window;
                uint256 count = steps.length - first < window ? steps.length - first : window;
                bytes32[] memory l = new bytes32[](count);
                for (uint256 i = 0; i < count; i++) {
                    l[i] = steps[first + i];
                }
                assertEq(ArthaMerkle.rootOf(l), wr[w], "window root");
            }
            bytes32 jobRoot = vm.parseJsonBytes32(json, key(".job_trees", t, ".job_root"));
            assertEq(ArthaMerkle.rootOf(wr), jobRoot, "job root over window roots");
        }
    }
}
