// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";

/// @notice A job's whole life on chain costs the same whatever its step
/// count: one root is committed per job. Run with `-vv` to see the table.
contract GasTest is Fixture {
    uint256 constant LIFE_BUDGET = 400_000;

    function life(bytes32 jobId, uint64 steps) internal returns (uint256 total) {
        uint32 window = 100;
        uint32 windows = uint32((steps + window - 1) / window);
        uint256 g = gasleft();
        vm.prank(submitter);
        manager.submitJob{value: 10 ether}(jobId, keccak256("spec"), 4_710, RATE);
        uint256 submitGas = g - gasleft();
        g = gasleft();
        vm.prank(scheduler);
        manager.assign(jobId, NODE);
        uint256 assignGas = g - gasleft();
        g = gasleft();
        vm.prank(operator);
        poc.commit(jobId, keccak256(abi.encode(jobId)), window, windows, steps, 4_710, bytes32("w"), bytes32("m"));
        uint256 commitGas = g - gasleft();
        vm.warp(block.timestamp + PERIOD);
        g = gasleft();
        poc.finalize(jobId);
        uint256 finalizeGas = g - gasleft();
        total = submitGas + assignGas + commitGas + finalizeGas;
        emit log_named_uint("steps", steps);
        emit log_named_uint("  submit", submitGas);
        emit log_named_uint("  assign", assignGas);
        emit log_named_uint("  commit", commitGas);
        emit log_named_uint("  finalize", finalizeGas);
        emit log_named_uint("  total", total);
    }

    function diff(uint256 x, uint256 y) internal pure returns (uint256) {
        return x > y ? x - y : y - x;
    }

    function testJobLifeGasDoesNotGrowWithSteps() public {
        // The first job on a fresh deployment also pays one-time costs
        // (zero-to-non-zero writes of shared counters and balances).
        uint256 cold = life(bytes32(uint256(9) << 128), 1);
        assertTrue(cold < LIFE_BUDGET, "first job under 400k gas");
        uint256 a = life(bytes32(uint256(1) << 128), 100);
        uint256 b = life(bytes32(uint256(2) << 128), 10_000);
        uint256 c = life(bytes32(uint256(3) << 128), 1_000_000);
        // Equal up to the encoding of the numbers themselves (a few gas for
        // non-zero bytes): nothing is stored or hashed per step or window.
        assertTrue(diff(a, b) <= 100 && diff(b, c) <= 100 && diff(a, c) <= 100, "flat in steps");
        assertTrue(a < LIFE_BUDGET, "under 400k gas");
    }
}
