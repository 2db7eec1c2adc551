// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";

/// @notice The Solidity Merkle code agrees with artha-core on the committed
/// cross-language vectors (artha-core/tests/vectors/proofs.json).
contract VectorsTest is Test {
    string json;

    function setUp() public {
        json = vm.readFile("../artha-core/tests/vectors/proofs.json");
    }

    function key(string memory a, uint256 i, string memory b) internal pure returns (string memory) {
        return string.concat(a, "[", vm.toString(i), "]", b);
    }

    function testRecordLeavesMatch() public view {
        string[3] memory kinds = [".step_records", ".infer_records", ".complete_records"];
        for (uint256 k = 0; k < 3; k++) {
            for (uint256 i = 0; vm.keyExistsJson(json, key(kinds[k], i, "")); i++) {
                bytes memory enc = vm.parseJsonBytes(json, key(kinds[k], i, ".encoding"));
                bytes32 leaf = vm.parseJsonBytes32(json, key(kinds[k], i, ".leaf"));
                assertEq(ArthaMerkle.leafHash(enc), leaf, "leaf");
                if (k == 0) {
                    uint256 step = vm.parseJsonUint(json, key(kinds[k], i, ".step"));
                    assertEq(ArthaMerkle.stepNumber(enc), step, "little-endian step");
                }
            }
        }
    }

    function testMerkleRootsAndProofsMatch() public view {
        uint256 cases = 0;
        for (uint256 c = 0; vm.keyExistsJson(json, key(".merkle", c, "")); c++) {
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, key(".merkle", c, ".leaves"));
            bytes32 root = vm.parseJsonBytes32(json, key(".merkle", c, ".root"));
            for (uint256 i = 0; i < leaves.length; i++) {
                string memory p = string.concat(key(".merkle", c, ".proofs"), "[", vm.toString(i), "]");
                bytes32[] memory sib = vm.parseJsonBytes32Array(json, string.concat(p, ".siblings"));
                uint256 index = vm.parseJsonUint(json, string.concat(p, ".index"));
                assertTrue(ArthaMerkle.verify(root, leaves[index], index, leaves.length, sib), "proof verifies");
                if (leaves.length > 1) {
                    assertTrue(
                        !ArthaMerkle.verify(root, leaves[index], (index + 1) % leaves.length, leaves.length, sib),
                        "wrong index fails"
                    );
                }
            }
            cases++;
        }
        assertEq(cases, 6, "six merkle cases");
        bytes32[] memory wr = vm.parseJsonBytes32Array(json, ".job_trees[0].window_roots");
        bytes32 jobRoot = vm.parseJsonBytes32(json, ".job_trees[0].job_root");
        bytes32 acc = ArthaMerkle.nodeHash(wr[0], wr[1]);
        assertEq(ArthaMerkle.nodeHash(acc, wr[2]), jobRoot, "job root over window roots, last promoted");
    }
}
