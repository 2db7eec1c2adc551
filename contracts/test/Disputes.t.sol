// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Roles} from "../src/Roles.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {NodeCertRegistry} from "../src/NodeCertRegistry.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

/// @notice Audit randomness, the juror pool, jury draws, commit-reveal votes
/// and verdicts: no account decides a dispute.
contract DisputesTest is Fixture {
    bytes32 constant JOB = bytes32(uint256(0x4a4f42) << 128);
    uint64 constant MAX = 4_710;
    uint256 constant BUDGET = 10 ether;

    /// A committed three-step job (windows of two).
    function committed() internal returns (uint256 commitBlock) {
        (,,, bytes32 root) = threeStepTree();
        submitAndAssign(JOB, MAX, BUDGET);
        vm.prank(operator);
        poc.commit(JOB, root, 2, 2, 3, bytes32("w"), bytes32("m"));
        return block.number;
    }

    function claim(bytes32 salt) internal pure returns (ProofOfCompute.StepClaim memory c) {
        (bytes[] memory recs, bytes32 w0, bytes32 w1,) = threeStepTree();
        bytes32[] memory wp = new bytes32[](1);
        wp[0] = w1;
        bytes32[] memory sp = new bytes32[](1);
        sp[0] = ArthaMerkle.leafHash(recs[0]);
        c = ProofOfCompute.StepClaim(0, w0, wp, 1, recs[1], sp, rec(2, salt));
    }

    /// A committed job with one open challenge.
    function challenged() internal returns (uint256 id) {
        committed();
        vm.prank(challenger);
        id = poc.challenge{value: MIN_BOND}(JOB, claim("r"));
    }

    function status() internal view returns (uint256) {
        return uint256(manager.getJob(JOB).status);
    }

    // ------------------------------------------------------------- seed

    function testSeedNotReadyThenSealedAndStable() public {
        uint256 b = committed();
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.SeedNotReady.selector, b + 2));
        poc.auditSeed(JOB);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.SeedNotReady.selector, b + 2));
        poc.seal(JOB);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.SeedNotReady.selector, b + 2));
        poc.auditWindows(JOB, 1);
        vm.roll(b + 1);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.SeedNotReady.selector, b + 2));
        poc.auditSeed(JOB);
        vm.roll(b + 2);
        vm.setBlockhash(b + 1, bytes32("block after commit"));
        bytes32 want = keccak256(abi.encode(bytes32("block after commit"), JOB));
        assertEq(poc.auditSeed(JOB), want, "seed from the block after the commitment");
        vm.roll(b + 50);
        assertEq(poc.auditSeed(JOB), want, "same while the hash is available");
        vm.expectEmit(true, false, false, true, address(poc));
        emit ProofOfCompute.SeedSealed(JOB, want);
        vm.prank(stranger); // anyone
        assertEq(poc.seal(JOB), want, "sealed");
        assertEq(poc.commitmentOf(JOB).seed, want, "stored");
        // Idempotent, and stable for good once sealed.
        vm.roll(b + 10_000);
        assertEq(poc.seal(JOB), want, "seal again: the stored seed");
        assertEq(poc.auditSeed(JOB), want, "stable after 256 blocks");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotCommitted.selector, bytes32("x")));
        poc.auditSeed(bytes32("x"));
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotCommitted.selector, bytes32("x")));
        poc.seal(bytes32("x"));
    }

    function testSeedFallsBackAfter256Blocks() public {
        uint256 b = committed();
        vm.roll(b + 2);
        vm.setBlockhash(b + 1, bytes32("old"));
        // b + 1 is the oldest hash still available at b + 257.
        vm.roll(b + 257);
        assertEq(poc.auditSeed(JOB), keccak256(abi.encode(bytes32("old"), JOB)), "last block with the hash");
        vm.roll(b + 258);
        vm.setBlockhash(b + 257, bytes32("recent"));
        bytes32 prevSeed = keccak256(abi.encode(bytes32("recent"), JOB));
        assertEq(poc.auditSeed(JOB), prevSeed, "the previous block's hash");
        vm.roll(b + 259);
        vm.setBlockhash(b + 258, bytes32("next"));
        assertTrue(poc.auditSeed(JOB) != prevSeed, "moves every block until sealed");
        bytes32 sealedSeed = poc.seal(JOB);
        assertEq(sealedSeed, keccak256(abi.encode(bytes32("next"), JOB)), "sealed value");
        vm.roll(b + 400);
        assertEq(poc.auditSeed(JOB), sealedSeed, "then stable");
    }

    function testFinalizeSealsTheSeed() public {
        uint256 b = committed();
        vm.warp(block.timestamp + PERIOD);
        vm.roll(b + 2);
        vm.setBlockhash(b + 1, bytes32("h"));
        poc.finalize(JOB);
        assertEq(poc.commitmentOf(JOB).seed, keccak256(abi.encode(bytes32("h"), JOB)), "sealed at finalize");
    }

    // ---------------------------------------------------------- windows

    function testAuditWindowsDistinctInRangeDeterministic() public {
        submitAndAssign(JOB, 1_000, BUDGET);
        vm.prank(operator);
        poc.commit(JOB, bytes32("root"), 10, 100, 1_000, bytes32(0), bytes32("m"));
        vm.roll(block.number + 2);
        uint256[] memory w = poc.auditWindows(JOB, 20);
        assertEq(w.length, 20, "count");
        for (uint256 i = 0; i < w.length; i++) {
            assertTrue(w[i] < 100, "in range");
            for (uint256 k = 0; k < i; k++) {
                assertTrue(w[i] != w[k], "distinct");
            }
        }
        bytes32 seed = poc.seal(JOB);
        uint256[] memory again = poc.auditWindows(JOB, 20);
        assertEq(keccak256(abi.encode(again)), keccak256(abi.encode(w)), "deterministic");
        // The rule, re-implemented: keccak(seed, jobId, i) % windows, skipping repeats.
        uint256 found = 0;
        for (uint256 i = 0; found < 20; i++) {
            uint256 idx = uint256(keccak256(abi.encode(seed, JOB, i))) % 100;
            bool seen = false;
            for (uint256 k = 0; k < found; k++) {
                if (w[k] == idx) seen = true;
            }
            if (!seen) assertEq(w[found++], idx, "same draw");
        }
        // A prefix of a longer draw; never more than the windows.
        uint256[] memory three = poc.auditWindows(JOB, 3);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(three[i], w[i], "prefix");
        }
        uint256[] memory all = poc.auditWindows(JOB, 1_000);
        assertEq(all.length, 100, "min(count, windows)");
        uint256 sum = 0;
        for (uint256 i = 0; i < all.length; i++) {
            sum += all[i];
        }
        assertEq(sum, 99 * 100 / 2, "every window once");
        assertEq(poc.auditWindows(JOB, 0).length, 0, "none asked");
    }

    /// The example in `drawWindows`' NatSpec (the Rust engine checks the same).
    function testDrawWindowsExample() public view {
        uint256[] memory w = poc.drawWindows(bytes32(uint256(1)), bytes32(uint256(2)), 10, 5);
        uint256[5] memory want = [uint256(2), 7, 8, 4, 0];
        assertEq(w.length, 5, "five");
        for (uint256 i = 0; i < 5; i++) {
            assertEq(w[i], want[i], "example");
        }
    }

    function testFuzzAuditWindows(bytes32 seed, bytes32 jobId, uint32 windows, uint256 count) public view {
        windows = uint32(bound(windows, 1, 64));
        count = bound(count, 0, 80);
        uint256[] memory w = poc.drawWindows(seed, jobId, windows, count);
        assertEq(w.length, count < windows ? count : windows, "min(count, windows)");
        for (uint256 i = 0; i < w.length; i++) {
            assertTrue(w[i] < windows, "in range");
            for (uint256 k = 0; k < i; k++) {
                assertTrue(w[i] != w[k], "distinct");
            }
        }
    }

    // ------------------------------------------------------------- pool

    function testJoinAndLeaveJury() public {
        vm.deal(stranger, 10 ether);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JurorStakeTooLow.selector, JUROR_STAKE - 1, JUROR_STAKE));
        poc.joinJury{value: JUROR_STAKE - 1}();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotJuror.selector, stranger));
        poc.leaveJury();
        vm.prank(stranger);
        vm.expectEmit(true, false, false, true, address(poc));
        emit ProofOfCompute.JurorJoined(stranger, 2 ether);
        poc.joinJury{value: 2 ether}();
        assertEq(poc.jurorStakeOf(stranger), 2 ether, "stake is what was sent");
        assertEq(poc.jurorCount(), 1, "in the pool");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyJuror.selector, stranger));
        poc.joinJury{value: JUROR_STAKE}();
        joinJurors(3);
        assertEq(poc.jurorCount(), 4, "four");
        uint256 before = stranger.balance;
        vm.prank(stranger);
        poc.leaveJury();
        assertEq(stranger.balance - before, 2 ether, "stake back");
        assertEq(poc.jurorStakeOf(stranger), 0, "gone");
        assertEq(poc.jurorCount(), 3, "three left");
        // Swap-and-pop kept the others drawable: a full jury still draws.
        uint256 id = challenged();
        address[] memory jury = draw(id);
        assertEq(jury.length, 3, "drawn");
        uint256 huge = uint256(type(uint128).max) + 1;
        vm.deal(stranger, huge);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JurorStakeTooHigh.selector, huge));
        poc.joinJury{value: huge}();
    }

    function testDrawnJurorsAreOnDutyUntilResolved() public {
        joinJurors(3);
        uint256 id = challenged();
        address[] memory jury = draw(id);
        vm.prank(jury[0]);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.OnDuty.selector, jury[0]));
        poc.leaveJury();
        for (uint256 i = 0; i < 3; i++) {
            commitVoteAs(id, jury[i], VALID);
        }
        for (uint256 i = 0; i < 3; i++) {
            revealVoteAs(id, jury[i], VALID);
        }
        poc.resolve(id);
        vm.prank(jury[0]);
        poc.leaveJury();
        assertEq(jury[0].balance, 10 ether, "whole stake back");
    }

    // ------------------------------------------------------------- draw

    function testDrawJuryNotReadyAndNotEnoughJurors() public {
        joinJurors(2);
        uint256 id = challenged();
        uint256 b = block.number;
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JuryNotReady.selector, b + 2));
        poc.drawJury(id);
        vm.roll(b + 1);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JuryNotReady.selector, b + 2));
        poc.drawJury(id);
        vm.roll(b + 2);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotEnoughJurors.selector, 2, 3));
        poc.drawJury(id);
        // The challenger and the operator in the pool do not count.
        vm.prank(challenger);
        poc.joinJury{value: JUROR_STAKE}();
        vm.prank(operator);
        poc.joinJury{value: JUROR_STAKE}();
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotEnoughJurors.selector, 2, 3));
        poc.drawJury(id);
        joinJurors(1);
        address[] memory jury = poc.drawJury(id);
        assertEq(jury.length, 3, "drawn");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JuryAlreadyDrawn.selector, id));
        poc.drawJury(id);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.UnknownChallenge.selector, 99));
        poc.drawJury(99);
    }

    function testDrawExcludesChallengerAndOperator() public {
        joinJurors(3);
        vm.prank(challenger);
        poc.joinJury{value: JUROR_STAKE}();
        vm.prank(operator);
        poc.joinJury{value: JUROR_STAKE}();
        joinJurors(2);
        // Many draws (one per challenge), none with the challenger or operator.
        committed();
        for (uint256 n = 0; n < 8; n++) {
            vm.prank(challenger);
            uint256 id = poc.challenge{value: MIN_BOND}(JOB, claim(bytes32(n)));
            address[] memory jury = draw(id);
            for (uint256 i = 0; i < jury.length; i++) {
                assertTrue(jury[i] != challenger && jury[i] != operator, "excluded");
                for (uint256 k = 0; k < i; k++) {
                    assertTrue(jury[i] != jury[k], "distinct");
                }
            }
        }
    }

    function testDrawIsDeterministicForABlockHash() public {
        joinJurors(7);
        uint256 id = challenged();
        uint256 b = block.number;
        vm.roll(b + 2);
        vm.setBlockhash(b + 1, bytes32("draw block"));
        address[] memory want = expectedJury(id, b + 1);
        address[] memory jury = poc.drawJury(id);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(jury[i], want[i], "same jury as the rule gives");
        }
        address[] memory stored = poc.juryOf(id);
        assertEq(keccak256(abi.encode(stored)), keccak256(abi.encode(jury)), "stored");
        ProofOfCompute.Challenge memory c = poc.getChallenge(id);
        assertEq(c.drawnAt, block.timestamp, "drawn at");
        (uint256 ce, uint256 re) = poc.deadlinesOf(id);
        assertEq(ce, block.timestamp + VOTE, "commit deadline");
        assertEq(re, block.timestamp + 2 * VOTE, "reveal deadline");
        (bool drawn,,) = poc.ballotOf(id, jury[0]);
        assertTrue(drawn, "seat");
    }

    function testDrawFallsBackAfter256Blocks() public {
        joinJurors(7);
        uint256 id = challenged();
        uint256 b = block.number;
        vm.roll(b + 300);
        vm.setBlockhash(b + 299, bytes32("late"));
        address[] memory want = expectedJury(id, b + 299);
        address[] memory jury = poc.drawJury(id);
        for (uint256 i = 0; i < 3; i++) {
            assertEq(jury[i], want[i], "from the previous block's hash");
        }
    }

    // ------------------------------------------------------------ votes

    function testCommitAndRevealRules() public {
        joinJurors(3);
        uint256 id = challenged();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotOnJury.selector, id, stranger));
        poc.commitVote(id, bytes32("c"));
        address[] memory jury = draw(id);
        (address a, address b, address c) = (jury[0], jury[1], jury[2]);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotOnJury.selector, id, stranger));
        poc.commitVote(id, bytes32("c"));
        vm.prank(a);
        vm.expectRevert(ProofOfCompute.EmptyCommitment.selector);
        poc.commitVote(id, bytes32(0));
        assertEq(poc.voteCommitment(id, a, FRAUD, saltOf(a)), keccak256(abi.encode(id, a, FRAUD, saltOf(a))), "helper");
        commitVoteAs(id, a, FRAUD);
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyVoted.selector, id, a));
        poc.commitVote(id, bytes32("again"));
        commitVoteAs(id, b, UNAVAILABLE);
        // Not every juror committed and the commit phase is open: no reveal yet.
        (uint256 commitEnd, uint256 revealEnd) = poc.deadlinesOf(id);
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingOpen.selector, commitEnd));
        poc.revealVote(id, FRAUD, saltOf(a));
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingOpen.selector, revealEnd));
        poc.resolve(id);
        vm.warp(commitEnd);
        vm.prank(c);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingClosed.selector, commitEnd));
        poc.commitVote(id, bytes32("late"));
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.InvalidVote.selector, 0));
        poc.revealVote(id, 0, saltOf(a));
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.InvalidVote.selector, 4));
        poc.revealVote(id, 4, saltOf(a));
        vm.prank(a);
        vm.expectRevert(ProofOfCompute.BadReveal.selector);
        poc.revealVote(id, VALID, saltOf(a));
        vm.prank(a);
        vm.expectRevert(ProofOfCompute.BadReveal.selector);
        poc.revealVote(id, FRAUD, bytes32("wrong salt"));
        vm.prank(c); // never committed
        vm.expectRevert(ProofOfCompute.BadReveal.selector);
        poc.revealVote(id, VALID, saltOf(c));
        revealVoteAs(id, a, FRAUD);
        vm.prank(a);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyVoted.selector, id, a));
        poc.revealVote(id, FRAUD, saltOf(a));
        (,, uint8 v) = poc.ballotOf(id, a);
        assertEq(v, FRAUD, "revealed");
        vm.warp(revealEnd);
        vm.prank(b);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingClosed.selector, revealEnd));
        poc.revealVote(id, UNAVAILABLE, saltOf(b));
        poc.resolve(id);
        vm.prank(b);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyResolved.selector, id));
        poc.revealVote(id, UNAVAILABLE, saltOf(b));
        vm.prank(b);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyResolved.selector, id));
        poc.commitVote(id, bytes32("x"));
    }

    function testRevealOpensAsSoonAsEveryoneCommitted() public {
        joinJurors(3);
        uint256 id = challenged();
        address[] memory jury = draw(id);
        for (uint256 i = 0; i < 3; i++) {
            commitVoteAs(id, jury[i], VALID);
        }
        revealVoteAs(id, jury[0], VALID); // no wait for the commit deadline
        revealVoteAs(id, jury[1], VALID);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingOpen.selector, block.timestamp + 2 * VOTE));
        poc.resolve(id);
        revealVoteAs(id, jury[2], VALID);
        poc.resolve(id); // no wait for the reveal deadline
        assertTrue(poc.getChallenge(id).resolved, "resolved at once");
    }

    // --------------------------------------------------------- verdicts

    function testUnavailableVoidsTheJob() public {
        registry.grantRole(registry.SLASHER(), admin);
        registry.adjustReputation(NODE, 25);
        joinJurors(3);
        uint256 id = challenged();
        uint256 sub = submitter.balance;
        uint256 ch = challenger.balance;
        uint256 op = operator.balance;
        judge(id, unanimous(UNAVAILABLE));
        assertEq(status(), uint256(AIJobManager.Status.Voided), "voided");
        assertEq(submitter.balance - sub, BUDGET, "no data, no pay: escrow refunded");
        assertEq(challenger.balance - ch, MIN_BOND, "bond back");
        assertEq(operator.balance, op, "node unpaid");
        NodeCertRegistry.Node memory n = registry.getNode(NODE);
        assertEq(n.stake, MIN_STAKE, "not slashed");
        assertTrue(!n.slashed && registry.isEligible(NODE), "still certified");
        assertEq(n.reputation, 15, "reputation -10");
        assertEq(poc.getChallenge(id).verdict, UNAVAILABLE, "verdict");
        vm.warp(block.timestamp + PERIOD);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.WrongStatus.selector, JOB, AIJobManager.Status.Voided));
        poc.finalize(JOB);
    }

    /// A data challenge (no step claim: a log or checkpoint that is not
    /// what the commitment says) goes to the same jury and, upheld, slashes;
    /// it is bonded and bounded by the period like a step challenge.
    function testDataChallengeIsJudgedLikeAStep() public {
        joinJurors(3);
        committed();
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.BondTooLow.selector, MIN_BOND - 1, MIN_BOND));
        poc.challengeData{value: MIN_BOND - 1}(JOB);
        vm.prank(challenger);
        uint256 id = poc.challengeData{value: MIN_BOND}(JOB);
        assertEq(status(), uint256(AIJobManager.Status.Challenged), "challenged");
        assertEq(poc.getChallenge(id).step, 0, "no step");
        uint256 sub = submitter.balance;
        judge(id, unanimous(FRAUD));
        assertEq(status(), uint256(AIJobManager.Status.Slashed), "slashed");
        assertEq(submitter.balance - sub, BUDGET, "refunded");
        assertTrue(registry.getNode(NODE).slashed, "slashed for good");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotCommitted.selector, bytes32("none")));
        poc.challengeData{value: MIN_BOND}(bytes32("none"));
    }

    function testFraudAfterUnavailableStillSlashes() public {
        joinJurors(3);
        committed();
        vm.startPrank(challenger);
        uint256 a = poc.challenge{value: MIN_BOND}(JOB, claim("a"));
        uint256 b = poc.challenge{value: MIN_BOND}(JOB, claim("b"));
        vm.stopPrank();
        judge(a, unanimous(UNAVAILABLE));
        uint256 ch = challenger.balance;
        judge(b, unanimous(FRAUD));
        assertEq(status(), uint256(AIJobManager.Status.Slashed), "slashed");
        assertEq(challenger.balance - ch, MIN_BOND + SLASH, "slash to the challenger, no second refund");
        assertTrue(registry.getNode(NODE).slashed, "node slashed for good");
        assertEq(address(market).balance, 0, "escrow refunded once");
    }

    function testTieIsValidAndLosersPayTheBondRecipient() public {
        joinJurors(3);
        uint256 id = challenged();
        uint256 op = operator.balance;
        uint256 ch = challenger.balance;
        // FRAUD 1, UNAVAILABLE 1, one silent: a tie, so VALID, which nobody
        // voted: every juror is penalized and the penalties go with the bond.
        address[] memory jury = judge(id, [FRAUD, UNAVAILABLE, 0]);
        assertEq(poc.getChallenge(id).verdict, VALID, "tie is VALID");
        assertEq(operator.balance - op, MIN_BOND + 3 * (JUROR_STAKE / 2), "bond and penalties to the operator");
        assertEq(challenger.balance, ch, "bond lost (paid at the challenge)");
        for (uint256 i = 0; i < 3; i++) {
            assertEq(poc.jurorStakeOf(jury[i]), JUROR_STAKE / 2, "half lost");
        }
        assertEq(poc.jurorCount(), 0, "below the stake: out of the pool");
        assertEq(status(), uint256(AIJobManager.Status.Committed), "restored");
        // They can still leave with what is left.
        uint256 before = jury[0].balance;
        vm.prank(jury[0]);
        poc.leaveJury();
        assertEq(jury[0].balance - before, JUROR_STAKE / 2, "the rest back");
    }

    function testMajorityWinsAndTakesThePenalties() public {
        joinJurors(3);
        uint256 id = challenged();
        address[] memory jury = judge(id, [FRAUD, FRAUD, VALID]);
        assertEq(poc.getChallenge(id).verdict, FRAUD, "two of three");
        assertEq(poc.jurorStakeOf(jury[0]), JUROR_STAKE + JUROR_STAKE / 4, "half of the penalty");
        assertEq(poc.jurorStakeOf(jury[1]), JUROR_STAKE + JUROR_STAKE / 4, "half of the penalty");
        assertEq(poc.jurorStakeOf(jury[2]), JUROR_STAKE / 2, "penalized");
        assertEq(poc.jurorCount(), 2, "the loser is out of the pool");
    }

    function testPenaltyEventsAndSilentJurors() public {
        joinJurors(3);
        uint256 id = challenged();
        jurySilentThenRevealed(id);
    }

    function jurySilentThenRevealed(uint256 id) internal {
        address[] memory jury = draw(id);
        commitVoteAs(id, jury[0], VALID);
        commitVoteAs(id, jury[1], VALID); // commits but never reveals
        (uint256 commitEnd, uint256 revealEnd) = poc.deadlinesOf(id);
        vm.warp(commitEnd);
        revealVoteAs(id, jury[0], VALID);
        vm.warp(revealEnd);
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.JurorPenalized(id, jury[1], JUROR_STAKE / 2);
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.JurorPenalized(id, jury[2], JUROR_STAKE / 2);
        poc.resolve(id);
        assertEq(poc.getChallenge(id).verdict, VALID, "one reveal decides");
        assertEq(poc.jurorStakeOf(jury[0]), 2 * JUROR_STAKE, "both penalties");
    }

    function testNobodyRevealedDismisses() public {
        joinJurors(3);
        uint256 id = challenged();
        uint256 ch = challenger.balance;
        uint256 op = operator.balance;
        judge(id, [4, 4, 0]); // two commit, nobody reveals
        ProofOfCompute.Challenge memory c = poc.getChallenge(id);
        assertTrue(c.resolved, "resolved");
        assertEq(c.verdict, 0, "dismissed");
        assertEq(
            challenger.balance - ch, MIN_BOND + 3 * (JUROR_STAKE / 2), "bond back with the silent jurors' penalties"
        );
        assertEq(operator.balance, op, "operator untouched");
        assertEq(registry.getNode(NODE).stake, MIN_STAKE, "nobody else slashed");
        assertEq(status(), uint256(AIJobManager.Status.Committed), "restored");
    }

    function testNoJuryIsDismissedAfterTheTimeout() public {
        joinJurors(2); // too few: no jury can be drawn
        uint256 id = challenged();
        vm.roll(block.number + 2);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotEnoughJurors.selector, 2, 3));
        poc.drawJury(id);
        vm.warp(block.timestamp + 4 * VOTE - 1);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JuryNotDrawn.selector, id));
        poc.resolve(id);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.OpenChallenge.selector, JOB));
        poc.finalize(JOB);
        vm.warp(block.timestamp + 1);
        uint256 ch = challenger.balance;
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.ChallengeResolved(id, JOB, 0, 0, challenger, MIN_BOND);
        vm.prank(stranger);
        poc.resolve(id);
        assertEq(challenger.balance - ch, MIN_BOND, "bond back");
        assertEq(status(), uint256(AIJobManager.Status.Committed), "restored");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyResolved.selector, id));
        poc.drawJury(id);
        poc.finalize(JOB);
        assertEq(status(), uint256(AIJobManager.Status.Finalized), "the job is not blocked");
    }

    // ------------------------------------------------------------ trust

    function testNoAdminDecidesADispute() public {
        joinJurors(3);
        uint256 id = challenged();
        // No arbiter role, no `resolve(uint256,bool)`.
        (bool ok,) = address(poc).call(abi.encodeWithSignature("ARBITER()"));
        assertTrue(!ok, "no ARBITER role");
        (ok,) = address(poc).call(abi.encodeWithSignature("resolve(uint256,bool)", id, true));
        assertTrue(!ok, "no resolve(uint256,bool)");
        // The admin holds ADMIN, grants itself any role; still only the
        // rules apply to it.
        assertTrue(poc.hasRole(poc.ADMIN(), admin), "admin");
        poc.grantRole(keccak256("ARBITER"), admin);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.JuryNotDrawn.selector, id));
        poc.resolve(id);
        address[] memory jury = draw(id);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotOnJury.selector, id, admin));
        poc.commitVote(id, bytes32("c"));
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.VotingOpen.selector, block.timestamp + 2 * VOTE));
        poc.resolve(id);
        for (uint256 i = 0; i < 3; i++) {
            commitVoteAs(id, jury[i], FRAUD);
        }
        for (uint256 i = 0; i < 3; i++) {
            revealVoteAs(id, jury[i], FRAUD);
        }
        poc.resolve(id);
        assertEq(poc.getChallenge(id).verdict, FRAUD, "the jury's verdict");
        // The registry's admin cannot restore the slashed node.
        registry.grantRole(registry.ATTESTOR(), admin);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeWasSlashed.selector, NODE));
        registry.certify(NODE);
        vm.prank(attestor);
        vm.expectRevert(abi.encodeWithSelector(NodeCertRegistry.NodeWasSlashed.selector, NODE));
        registry.certify(NODE);
        vm.prank(scheduler);
        bytes32 other = bytes32("other");
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, other));
        manager.assign(other, NODE);
        submit(other, MAX, BUDGET);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NodeNotEligible.selector, NODE));
        manager.assign(other, NODE);
    }

    function testConstructorChecksParams() public {
        vm.expectRevert(ProofOfCompute.InvalidParams.selector);
        new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, JUROR_STAKE, 0, VOTE);
        vm.expectRevert(ProofOfCompute.InvalidParams.selector);
        new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, JUROR_STAKE, 4, VOTE);
        vm.expectRevert(ProofOfCompute.InvalidParams.selector);
        new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, JUROR_STAKE, 3, 0);
        vm.expectRevert(ProofOfCompute.InvalidParams.selector);
        new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, 0, 3, VOTE);
        ProofOfCompute one = new ProofOfCompute(admin, manager, registry, market, PERIOD, MIN_BOND, SLASH, 1, 1, 1);
        assertEq(one.jurySize(), 1, "a jury of one is allowed");
        assertEq(poc.jurorStake(), JUROR_STAKE, "jurorStake");
        assertEq(poc.votePeriod(), VOTE, "votePeriod");
    }

    // ------------------------------------------------------------- fuzz

    function expectedVerdict(uint8[3] memory votes) internal pure returns (uint8) {
        uint256[4] memory n;
        uint256 reveals = 0;
        for (uint256 i = 0; i < 3; i++) {
            if (votes[i] >= 1 && votes[i] <= 3) {
                n[votes[i]] += 1;
                reveals += 1;
            }
        }
        if (reveals == 0) return 0;
        if (n[1] > n[2] && n[1] > n[3]) return FRAUD;
        if (n[3] > n[2] && n[3] > n[1]) return UNAVAILABLE;
        return VALID;
    }

    function everyone() internal view returns (uint256 sum) {
        sum = submitter.balance + operator.balance + challenger.balance + address(market).balance
            + address(registry).balance + address(poc).balance + address(manager).balance;
        for (uint256 i = 0; i < pool.length; i++) {
            sum += pool[i].balance;
        }
    }

    struct Before {
        uint256 total;
        uint256 challenger;
        uint256 operator;
        uint256 submitter;
    }

    /// Penalties and rewards add up: whatever the five-strong pool's drawn
    /// jurors vote (0 nothing, 4 commit without reveal), every wei of bond,
    /// escrow, node stake and juror stake ends where the rules say.
    function testFuzzJuryAccounting(uint8 v0, uint8 v1, uint8 v2, uint96 bond) public {
        uint8[3] memory votes = [uint8(bound(v0, 0, 4)), uint8(bound(v1, 0, 4)), uint8(bound(v2, 0, 4))];
        bond = uint96(bound(bond, MIN_BOND, 5 ether));
        joinJurors(5);
        Before memory b0 = Before(everyone(), challenger.balance, operator.balance, submitter.balance);
        committed();
        vm.prank(challenger);
        uint256 id = poc.challenge{value: bond}(JOB, claim("r"));
        address[] memory jury = judge(id, votes);
        uint8 verdict = expectedVerdict(votes);
        assertEq(poc.getChallenge(id).verdict, verdict, "verdict");
        uint256 unshared = checkJurors(jury, votes, verdict);
        checkParties(b0, verdict, bond, unshared);
    }

    /// Each drawn juror's stake; returns the penalties nobody won.
    function checkJurors(address[] memory jury, uint8[3] memory votes, uint8 verdict)
        internal
        view
        returns (uint256 unshared)
    {
        uint256 pot = 0;
        uint256 winners = 0;
        for (uint256 i = 0; i < 3; i++) {
            if (verdict != 0 && votes[i] == verdict) winners += 1;
            else pot += JUROR_STAKE / 2;
        }
        for (uint256 i = 0; i < 3; i++) {
            uint256 s = poc.jurorStakeOf(jury[i]);
            if (verdict != 0 && votes[i] == verdict) assertEq(s, JUROR_STAKE + pot / winners, "winner's share");
            else assertEq(s, JUROR_STAKE / 2, "penalized");
        }
        unshared = winners == 0 ? pot : 0;
        assertEq(stakes() + unshared, 5 * JUROR_STAKE, "juror stakes: penalties shared or paid out");
    }

    function stakes() internal view returns (uint256 sum) {
        for (uint256 i = 0; i < pool.length; i++) {
            sum += poc.jurorStakeOf(pool[i]);
        }
    }

    function checkParties(Before memory b0, uint8 verdict, uint256 bond, uint256 unshared) internal view {
        uint256 slash = verdict == FRAUD ? SLASH : 0;
        if (verdict == VALID) {
            assertEq(operator.balance - b0.operator, bond + unshared, "operator: bond (+ unshared penalties)");
            assertEq(b0.challenger - challenger.balance, bond, "challenger: bond lost");
        } else {
            assertEq(operator.balance, b0.operator, "operator untouched");
            assertEq(challenger.balance - b0.challenger, slash + unshared, "challenger: bond back (+ slash, penalties)");
        }
        bool refunded = verdict == FRAUD || verdict == UNAVAILABLE;
        assertEq(submitter.balance + (refunded ? 0 : BUDGET), b0.submitter, "submitter: refunded or still in escrow");
        assertEq(address(market).balance, refunded ? 0 : BUDGET, "market: open escrow");
        assertEq(address(poc).balance, stakes(), "prover: juror stakes only");
        assertEq(address(registry).balance, MIN_STAKE - slash, "registry: node stake");
        assertEq(everyone(), b0.total, "value conserved");
    }
}
