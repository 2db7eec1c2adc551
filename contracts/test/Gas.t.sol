// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {console} from "./utils/Test.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

/// @notice A job's whole life on chain costs the same whatever its step
/// count: one root is committed per job. A dispute costs the same whatever
/// the job. `forge test -vv --match-contract GasTest --use ./bin/solc`
/// prints the tables.
///
/// Figures are execution gas measured with `gasleft()` inside one test
/// transaction: no intrinsic 21 000 or calldata gas, and storage slots and
/// accounts touched by an earlier step are warm. Real transactions cost
/// more; `scripts/gas-anvil.sh` measures those on anvil.
contract GasTest is Fixture {
    uint256 constant LIFE_BUDGET = 400_000;

    struct Life {
        uint256 submit;
        uint256 assign;
        uint256 commit;
        uint256 finalize;
        uint256 total;
    }

    function life(bytes32 jobId, uint64 steps) internal returns (Life memory g) {
        uint32 window = 100;
        uint32 windows = uint32((steps + window - 1) / window);
        uint256 left = gasleft();
        vm.prank(submitter);
        manager.submitJob{value: 10 ether}(jobId, SPEC, 1_000_000, 0.000001 ether);
        g.submit = left - gasleft();
        left = gasleft();
        vm.prank(scheduler);
        manager.assign(jobId, NODE);
        g.assign = left - gasleft();
        left = gasleft();
        vm.prank(operator);
        poc.commit(jobId, keccak256(abi.encode(jobId)), window, windows, steps, bytes32("w"), bytes32("m"));
        g.commit = left - gasleft();
        vm.warp(block.timestamp + PERIOD);
        vm.roll(block.number + 2);
        left = gasleft();
        poc.finalize(jobId);
        g.finalize = left - gasleft();
        g.total = g.submit + g.assign + g.commit + g.finalize;
    }

    function pad(uint256 v, uint256 width) internal pure returns (string memory s) {
        s = vm.toString(v);
        while (bytes(s).length < width) {
            s = string.concat(" ", s);
        }
    }

    function row(string memory label, Life memory g) internal view {
        console.log(
            string.concat(
                label,
                " |",
                pad(g.submit, 8),
                " |",
                pad(g.assign, 7),
                " |",
                pad(g.commit, 7),
                " |",
                pad(g.finalize, 9),
                " |",
                pad(g.total, 8)
            )
        );
    }

    function diff(uint256 x, uint256 y) internal pure returns (uint256) {
        return x > y ? x - y : y - x;
    }

    function testJobLifeGasDoesNotGrowWithSteps() public {
        // The first job on a fresh deployment also pays one-time costs
        // (zero-to-non-zero writes of shared counters and balances).
        Life memory cold = life(bytes32(uint256(9) << 128), 1);
        Life memory a = life(bytes32(uint256(1) << 128), 100);
        Life memory b = life(bytes32(uint256(2) << 128), 10_000);
        Life memory c = life(bytes32(uint256(3) << 128), 1_000_000);
        console.log("steps             |  submit | assign | commit | finalize |   total");
        row("first job (1)    ", cold);
        row("100              ", a);
        row("10 000           ", b);
        row("1 000 000        ", c);
        assertTrue(cold.total < LIFE_BUDGET, "first job under 400k gas");
        assertTrue(a.total < LIFE_BUDGET, "under 400k gas");
        // Equal up to the encoding of the numbers themselves (a few gas for
        // non-zero bytes): nothing is stored or hashed per step or window.
        assertTrue(diff(a.total, b.total) <= 100 && diff(b.total, c.total) <= 100, "flat in steps");
        assertTrue(diff(a.total, c.total) <= 100, "flat in steps");
    }

    struct Dispute {
        uint256 challenge;
        uint256 draw;
        uint256 commitVote; // the most of the three
        uint256 revealVote; // the most of the three
        uint256 resolve;
    }

    /// A committed three-step job and a claim against its step 2.
    function disputed(bytes32 jobId) internal returns (ProofOfCompute.StepClaim memory claim) {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        submitAndAssign(jobId, 3, 1 ether);
        vm.prank(operator);
        poc.commit(jobId, root, 2, 2, 3, bytes32("w"), bytes32("m"));
        bytes32[] memory wp = new bytes32[](1);
        wp[0] = w1;
        bytes32[] memory sp = new bytes32[](1);
        sp[0] = ArthaMerkle.leafHash(recs[0]);
        claim = ProofOfCompute.StepClaim(0, w0, wp, 1, recs[1], sp, rec(2, "x"));
    }

    /// Every juror commits (reveal false) or reveals `verdict`; the most gas one took.
    function votes(uint256 id, address[] memory jury, uint8 verdict, bool reveal) internal returns (uint256 most) {
        for (uint256 i = 0; i < jury.length; i++) {
            bytes32 salt = saltOf(jury[i]);
            bytes32 c = keccak256(abi.encode(id, jury[i], verdict, salt));
            uint256 left = gasleft();
            vm.prank(jury[i]);
            if (reveal) poc.revealVote(id, verdict, salt);
            else poc.commitVote(id, c);
            uint256 used = left - gasleft();
            if (used > most) most = used;
        }
    }

    function dispute(bytes32 jobId, uint8 verdict) internal returns (Dispute memory g) {
        ProofOfCompute.StepClaim memory claim = disputed(jobId);
        uint256 left = gasleft();
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(jobId, claim);
        g.challenge = left - gasleft();
        vm.roll(block.number + 2);
        left = gasleft();
        address[] memory jury = poc.drawJury(id);
        g.draw = left - gasleft();
        g.commitVote = votes(id, jury, verdict, false);
        g.revealVote = votes(id, jury, verdict, true);
        left = gasleft();
        poc.resolve(id);
        g.resolve = left - gasleft();
    }

    function disputeRow(string memory label, Dispute memory g) internal view {
        console.log(
            string.concat(
                label,
                " |",
                pad(g.challenge, 10),
                " |",
                pad(g.draw, 9),
                " |",
                pad(g.commitVote, 11),
                " |",
                pad(g.revealVote, 11),
                " |",
                pad(g.resolve, 8)
            )
        );
    }

    function testDisputeGas() public {
        joinJurors(3);
        Dispute memory v = dispute(bytes32(uint256(21) << 128), VALID);
        Dispute memory u = dispute(bytes32(uint256(22) << 128), UNAVAILABLE);
        Dispute memory f = dispute(bytes32(uint256(23) << 128), FRAUD);
        console.log("verdict (jury of 3) | challenge | drawJury | commitVote | revealVote | resolve");
        disputeRow("VALID              ", v);
        disputeRow("UNAVAILABLE        ", u);
        disputeRow("FRAUD              ", f);
        assertEq(uint256(manager.getJob(bytes32(uint256(23) << 128)).status), 7, "slashed");
    }
}
