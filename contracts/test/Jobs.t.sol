// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Fixture} from "./Fixture.sol";
import {Roles, Guarded} from "../src/Roles.sol";
import {ArthaMerkle} from "../src/ArthaMerkle.sol";
import {DealMarket} from "../src/DealMarket.sol";
import {AIJobManager} from "../src/AIJobManager.sol";
import {ProofOfCompute} from "../src/ProofOfCompute.sol";

contract JobsTest is Fixture {
    bytes32 constant JOB = bytes32(uint256(0x4a4f42) << 128);
    uint64 constant MAX = 4_710;
    uint256 constant BUDGET = 10 ether;

    function commitThree(bytes32 root) internal {
        vm.prank(operator);
        poc.commit(JOB, root, 2, 2, 3, bytes32("weights"), bytes32("manifest"));
    }

    function claimForStep2(bytes[] memory recs, bytes32 w0, bytes32 w1, bytes memory replayed)
        internal
        pure
        returns (ProofOfCompute.StepClaim memory c)
    {
        bytes32[] memory wp = new bytes32[](1);
        wp[0] = w1;
        bytes32[] memory sp = new bytes32[](1);
        sp[0] = ArthaMerkle.leafHash(recs[0]);
        c = ProofOfCompute.StepClaim(0, w0, wp, 1, recs[1], sp, replayed);
    }

    // ----------------------------------------------------------- submission

    function testSubmitLocksEscrow() public {
        submit(JOB, MAX, BUDGET);
        AIJobManager.Job memory j = manager.getJob(JOB);
        assertEq(j.submitter, submitter, "submitter");
        assertEq(uint256(j.status), uint256(AIJobManager.Status.Submitted), "status");
        assertEq(address(market).balance, BUDGET, "escrow held by the market");
        assertEq(market.escrowOf(JOB).amount, BUDGET, "escrow amount");
    }

    function testSubmitReverts() public {
        vm.prank(submitter);
        vm.expectRevert(AIJobManager.Unfunded.selector);
        manager.submitJob(JOB, SPEC, MAX, PRICE);
        // 4 710 steps × 0.001 = 4.71 ARTH; one wei less is refused.
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.BudgetBelowEstimate.selector, 4.71 ether - 1, 4.71 ether));
        manager.submitJob{value: 4.71 ether - 1}(JOB, SPEC, MAX, PRICE);
        vm.prank(submitter);
        vm.expectRevert(AIJobManager.InvalidJob.selector);
        manager.submitJob{value: 1}(bytes32(0), SPEC, MAX, PRICE);
        // The spec's CID is required: jurors fetch the spec by it.
        vm.prank(submitter);
        vm.expectRevert(AIJobManager.InvalidJob.selector);
        manager.submitJob{value: BUDGET}(JOB, bytes32(0), MAX, PRICE);
        submit(JOB, MAX, 4.71 ether);
        AIJobManager.Job memory j = manager.getJob(JOB);
        assertEq(j.specCid, SPEC, "spec CID stored");
        assertEq(j.maxSteps, MAX, "max steps");
        assertEq(j.pricePerStep, PRICE, "price per step");
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.JobExists.selector, JOB));
        manager.submitJob{value: BUDGET}(JOB, SPEC, MAX, PRICE);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, bytes32("x")));
        manager.getJob(bytes32("x"));
    }

    function testAssignRules() public {
        submit(JOB, MAX, BUDGET);
        bytes32 SCHED = manager.SCHEDULER();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SCHED, stranger));
        manager.assign(JOB, NODE);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NodeNotEligible.selector, bytes32("ghost")));
        manager.assign(JOB, bytes32("ghost"));
        vm.prank(attestor);
        registry.revoke(NODE);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NodeNotEligible.selector, NODE));
        manager.assign(JOB, NODE);
        vm.prank(attestor);
        registry.certify(NODE);
        vm.prank(scheduler);
        manager.assign(JOB, NODE);
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.WrongStatus.selector, JOB, AIJobManager.Status.Assigned));
        manager.assign(JOB, NODE);
    }

    function testCancelRefundsBeforeAssignmentOnly() public {
        submit(JOB, MAX, BUDGET);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NotSubmitter.selector, JOB, stranger));
        manager.cancel(JOB);
        uint256 before = submitter.balance;
        vm.prank(submitter);
        manager.cancel(JOB);
        assertEq(submitter.balance - before, BUDGET, "refunded");
        assertEq(address(market).balance, 0, "nothing left in escrow");
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.WrongStatus.selector, JOB, AIJobManager.Status.Cancelled));
        manager.cancel(JOB);
        bytes32 PROVER = manager.PROVER();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, PROVER, stranger));
        manager.setStatus(JOB, AIJobManager.Status.Finalized);
    }

    // ------------------------------------------------------------- commit

    function testCommitRules() public {
        (,,, bytes32 root) = threeStepTree();
        bytes32 M = bytes32("manifest");
        submit(JOB, MAX, BUDGET);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.WrongStatus.selector, JOB, AIJobManager.Status.Submitted));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), M);
        vm.prank(scheduler);
        manager.assign(JOB, NODE);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotAssignedNode.selector, JOB, stranger));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), M);
        vm.startPrank(operator);
        vm.expectRevert(ProofOfCompute.MalformedRoot.selector);
        poc.commit(JOB, bytes32(0), 2, 2, 3, bytes32(0), M);
        vm.expectRevert(ProofOfCompute.MalformedRoot.selector);
        poc.commit(JOB, root, 2, 5, 3, bytes32(0), M);
        vm.expectRevert(ProofOfCompute.MalformedRoot.selector);
        poc.commit(JOB, root, 0, 2, 3, bytes32(0), M);
        vm.expectRevert(ProofOfCompute.MalformedRoot.selector);
        poc.commit(JOB, root, 2, 0, 0, bytes32(0), M);
        // No manifest, nothing to audit.
        vm.expectRevert(ProofOfCompute.MalformedRoot.selector);
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), bytes32(0));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), M);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyCommitted.selector, JOB));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), M);
        vm.stopPrank();
        ProofOfCompute.Commitment memory c = poc.commitmentOf(JOB);
        assertEq(c.jobRoot, root, "stored");
        assertEq(c.manifestCid, M, "manifest stored");
        assertEq(c.steps, 3, "steps");
        assertEq(c.commitBlock, block.number, "commit block");
        assertEq(c.seed, bytes32(0), "not sealed yet");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Committed), "committed");
    }

    function testStepsOverMax() public {
        (,,, bytes32 root) = threeStepTree();
        submitAndAssign(JOB, 2, BUDGET);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.StepsOverMax.selector, 3, 2));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), bytes32("m"));
        vm.prank(operator);
        poc.commit(JOB, root, 2, 1, 2, bytes32(0), bytes32("m"));
        assertEq(poc.commitmentOf(JOB).steps, 2, "exactly max is fine");
    }

    // ---------------------------------------------------------- finalize

    function testFinalizePaysPerStepAndRefundsTheRest() public {
        (,,, bytes32 root) = threeStepTree();
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.ChallengePeriodActive.selector, block.timestamp + PERIOD));
        poc.finalize(JOB);
        vm.warp(block.timestamp + PERIOD);
        // The audit seed needs the block after the commitment.
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.SeedNotReady.selector, block.number + 2));
        poc.finalize(JOB);
        vm.roll(block.number + 2);
        uint256 op = operator.balance;
        uint256 sub = submitter.balance;
        vm.prank(stranger); // anyone may finalize
        poc.finalize(JOB);
        assertEq(operator.balance - op, 3 * PRICE, "3 steps x 0.001 ARTH");
        assertEq(submitter.balance - sub, BUDGET - 3 * PRICE, "refund of the rest");
        assertEq(address(market).balance, 0, "escrow closed");
        assertEq(registry.getNode(NODE).reputation, 1, "reputation up");
        assertTrue(poc.commitmentOf(JOB).seed != bytes32(0), "finalize sealed the seed");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyFinalized.selector, JOB));
        poc.finalize(JOB);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotCommitted.selector, bytes32("x")));
        poc.finalize(bytes32("x"));
    }

    function testFinalizePaysExactlyTheBudgetAtMaxSteps() public {
        submitAndAssign(JOB, 1_000, 1_000 * uint256(PRICE));
        vm.prank(operator);
        poc.commit(JOB, bytes32("root"), 100, 10, 1_000, bytes32(0), bytes32("m"));
        vm.warp(block.timestamp + PERIOD);
        vm.roll(block.number + 2);
        uint256 op = operator.balance;
        uint256 sub = submitter.balance;
        poc.finalize(JOB);
        assertEq(operator.balance - op, 1_000 * uint256(PRICE), "the whole budget");
        assertEq(submitter.balance, sub, "nothing to refund");
    }

    // --------------------------------------------------------- challenges

    function testFraudVerdictSlashesAndRefunds() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        ProofOfCompute.StepClaim memory c = claimForStep2(recs, w0, w1, rec(2, "replayed"));
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(JOB, c);
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Challenged), "challenged");
        assertEq(poc.getChallenge(id).step, 2, "step");
        assertEq(poc.getChallenge(id).challengeBlock, block.number, "challenge block");
        vm.warp(block.timestamp + PERIOD);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.OpenChallenge.selector, JOB));
        poc.finalize(JOB);
        uint256 ch = challenger.balance;
        uint256 sub = submitter.balance;
        judge(id, unanimous(FRAUD));
        assertEq(challenger.balance - ch, MIN_BOND + SLASH, "bond back plus the slash");
        assertEq(submitter.balance - sub, BUDGET, "submitter refunded in full");
        assertEq(registry.getNode(NODE).stake, MIN_STAKE - SLASH, "stake slashed");
        assertTrue(registry.getNode(NODE).slashed, "marked slashed");
        assertTrue(!registry.isEligible(NODE), "node decertified");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Slashed), "slashed");
        ProofOfCompute.Challenge memory g = poc.getChallenge(id);
        assertTrue(g.resolved, "resolved");
        assertEq(g.verdict, FRAUD, "verdict");
        assertEq(poc.juryOf(id).length, 3, "jury kept");
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.AlreadyResolved.selector, id));
        poc.resolve(id);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.UnknownChallenge.selector, 99));
        poc.resolve(99);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.WrongStatus.selector, JOB, AIJobManager.Status.Slashed));
        poc.finalize(JOB);
    }

    function testValidVerdictPaysTheBondToTheNode() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "bogus")));
        uint256 op = operator.balance;
        judge(id, unanimous(VALID));
        assertEq(operator.balance - op, MIN_BOND, "bond to the operator");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Committed), "back to committed");
        vm.warp(block.timestamp + PERIOD);
        poc.finalize(JOB);
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Finalized), "finalized");
    }

    function testChallengeReverts() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        ProofOfCompute.StepClaim memory good = claimForStep2(recs, w0, w1, rec(2, "replayed"));
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.NotCommitted.selector, JOB));
        poc.challenge{value: MIN_BOND}(JOB, good);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        vm.startPrank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.BondTooLow.selector, 1, MIN_BOND));
        poc.challenge{value: 1}(JOB, good);
        ProofOfCompute.StepClaim memory c = claimForStep2(recs, w0, w1, rec(2, "replayed"));
        c.stepProof[0] = bytes32("wrong");
        vm.expectRevert(ProofOfCompute.InvalidProof.selector);
        poc.challenge{value: MIN_BOND}(JOB, c);
        c = claimForStep2(recs, w0, w1, rec(2, "replayed"));
        c.windowIndex = 1;
        vm.expectRevert(ProofOfCompute.InvalidProof.selector);
        poc.challenge{value: MIN_BOND}(JOB, c);
        c.windowIndex = 7;
        vm.expectRevert(ProofOfCompute.InvalidProof.selector);
        poc.challenge{value: MIN_BOND}(JOB, c);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.StepMismatch.selector, 2, 3));
        poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(3, "replayed")));
        vm.expectRevert(ProofOfCompute.NoDifference.selector);
        poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, recs[1]));
        vm.expectRevert(ArthaMerkle.MalformedRecord.selector);
        poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, hex"01"));
        vm.warp(block.timestamp + PERIOD);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.ChallengeWindowClosed.selector, block.timestamp));
        poc.challenge{value: MIN_BOND}(JOB, good);
        vm.stopPrank();
    }

    // -------------------------------------------------------------- market

    function testEscrowAccessAndPayoutBound() public {
        bytes32 ESC = market.ESCROW();
        bytes32 SET = market.SETTLER();
        vm.deal(stranger, 1 ether);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, ESC, stranger));
        market.lockEscrow{value: 1}(JOB, stranger);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SET, stranger));
        market.settle(JOB, stranger, 0);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Roles.Unauthorized.selector, SET, stranger));
        market.refund(JOB);
        market.grantRole(ESC, admin);
        market.grantRole(SET, admin);
        vm.expectRevert(DealMarket.Unfunded.selector);
        market.lockEscrow(JOB, submitter);
        market.lockEscrow{value: 1 ether}(JOB, submitter);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.EscrowExists.selector, JOB));
        market.lockEscrow{value: 1 ether}(JOB, submitter);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.PayoutExceedsEscrow.selector, 2 ether, 1 ether));
        market.settle(JOB, operator, 2 ether);
        market.settle(JOB, operator, 0.4 ether);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.EscrowClosed.selector, JOB));
        market.settle(JOB, operator, 0);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.UnknownEscrow.selector, bytes32("x")));
        market.refund(bytes32("x"));
    }

    function testStorageDeals() public {
        vm.deal(stranger, 12 ether);
        vm.prank(stranger);
        vm.expectRevert(DealMarket.InvalidDeal.selector);
        market.createDeal{value: 12 ether}(bytes32("cid"), 100, 0, 12, operator);
        vm.prank(stranger);
        uint256 id = market.createDeal{value: 12 ether}(bytes32("cid"), 100, 3, 12, operator);
        assertEq(market.getDeal(id).replicas, 3, "replicas");
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.NothingDue.selector, id));
        market.claimDeal(id);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.NotProvider.selector, id, stranger));
        market.claimDeal(id);
        vm.warp(block.timestamp + 90 days);
        uint256 before = operator.balance;
        vm.prank(operator);
        market.claimDeal(id);
        assertEq(operator.balance - before, 3 ether, "three months of twelve");
        vm.warp(block.timestamp + 1000 days);
        vm.prank(operator);
        market.claimDeal(id);
        assertEq(operator.balance - before, 12 ether, "never more than the price");
        vm.expectRevert(abi.encodeWithSelector(DealMarket.UnknownDeal.selector, 99));
        market.getDeal(99);
    }

    // ------------------------------------------------------------- failure

    function testAssignedJobThatFailsIsRefundedInFull() public {
        submit(JOB, MAX, BUDGET);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.WrongStatus.selector, JOB, AIJobManager.Status.Submitted));
        manager.fail(JOB);
        vm.prank(scheduler);
        manager.assign(JOB, NODE);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NotAssignedNodeOrScheduler.selector, JOB, stranger));
        manager.fail(JOB);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.NotAssignedNodeOrScheduler.selector, JOB, submitter));
        manager.fail(JOB);
        uint256 before = submitter.balance;
        vm.prank(operator);
        vm.expectEmit(true, true, false, true, address(manager));
        emit AIJobManager.JobFailed(JOB, NODE, operator);
        manager.fail(JOB);
        assertEq(submitter.balance - before, BUDGET, "full refund");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Failed), "failed");
        (,,, bytes32 root) = threeStepTree();
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.WrongStatus.selector, JOB, AIJobManager.Status.Failed));
        poc.commit(JOB, root, 2, 2, 3, bytes32(0), bytes32("m"));
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.WrongStatus.selector, JOB, AIJobManager.Status.Failed));
        manager.fail(JOB);
    }

    function testSchedulerCanFailALostNode() public {
        submitAndAssign(JOB, MAX, BUDGET);
        vm.prank(scheduler);
        manager.fail(JOB);
        assertEq(market.escrowOf(JOB).closed ? 1 : 0, 1, "escrow closed");
        assertEq(address(market).balance, 0, "nothing held");
    }

    // ------------------------------------------------------------ unknowns

    function testUnknownJobs() public {
        bytes32 X = bytes32("x");
        vm.prank(scheduler);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, X));
        manager.assign(X, NODE);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, X));
        manager.cancel(X);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, X));
        manager.fail(X);
        vm.prank(operator);
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, X));
        poc.commit(X, bytes32("r"), 1, 1, 1, bytes32(0), bytes32("m"));
        vm.prank(address(poc));
        vm.expectRevert(abi.encodeWithSelector(AIJobManager.UnknownJob.selector, X));
        manager.setStatus(X, AIJobManager.Status.Committed);
        vm.prank(submitter);
        vm.expectRevert(AIJobManager.InvalidJob.selector);
        manager.submitJob{value: 1}(JOB, SPEC, 0, PRICE);
        assertEq(poc.getChallenge(1).challenger, address(0), "no challenge yet");
        assertEq(poc.commitmentOf(X).jobRoot, bytes32(0), "no commitment");
        assertEq(market.escrowOf(X).submitter, address(0), "no escrow");
    }

    // -------------------------------------------------------------- events

    function testEventsCarryEveryField() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        vm.expectEmit(true, true, false, true, address(manager));
        emit AIJobManager.JobSubmitted(JOB, submitter, SPEC, MAX, PRICE, BUDGET);
        submit(JOB, MAX, BUDGET);
        vm.prank(scheduler);
        vm.expectEmit(true, true, false, true, address(manager));
        emit AIJobManager.JobAssigned(JOB, NODE);
        manager.assign(JOB, NODE);
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.Committed(JOB, NODE, root, 2, 2, 3, bytes32("weights"), bytes32("manifest"));
        commitThree(root);
        bytes memory replayed = rec(2, "replayed");
        vm.prank(challenger);
        vm.expectEmit(true, true, true, true, address(poc));
        emit ProofOfCompute.Challenged(1, JOB, challenger, 2, MIN_BOND, 0, 1, recs[1], replayed);
        poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, replayed));
        vm.roll(block.number + 2);
        vm.expectEmit(true, false, false, true, address(poc));
        emit ProofOfCompute.JuryDrawn(
            1, expectedJury(1, block.number - 1), block.timestamp + VOTE, block.timestamp + 2 * VOTE
        );
        address[] memory jury = poc.drawJury(1);
        for (uint256 i = 0; i < 3; i++) {
            vm.expectEmit(true, true, false, true, address(poc));
            emit ProofOfCompute.VoteCommitted(1, jury[i]);
            commitVoteAs(1, jury[i], VALID);
        }
        for (uint256 i = 0; i < 3; i++) {
            vm.expectEmit(true, true, false, true, address(poc));
            emit ProofOfCompute.VoteRevealed(1, jury[i], VALID);
            revealVoteAs(1, jury[i], VALID);
        }
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.ChallengeResolved(1, JOB, VALID, 0, operator, MIN_BOND);
        poc.resolve(1);
        vm.warp(block.timestamp + PERIOD);
        bytes32 seed = poc.auditSeed(JOB);
        vm.expectEmit(true, false, false, true, address(poc));
        emit ProofOfCompute.SeedSealed(JOB, seed);
        vm.expectEmit(true, true, false, true, address(market));
        emit DealMarket.EscrowSettled(JOB, operator, 3 * PRICE, BUDGET - 3 * PRICE);
        vm.expectEmit(true, true, false, true, address(poc));
        emit ProofOfCompute.Finalized(JOB, NODE, operator, 3 * PRICE, 3);
        poc.finalize(JOB);
    }

    // ---------------------------------------------------- many challenges

    function testSeveralChallengesOfOneJob() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        vm.startPrank(challenger);
        uint256 a = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "a")));
        uint256 b = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "b")));
        vm.stopPrank();
        assertEq(poc.commitmentOf(JOB).openChallenges, 2, "two open");
        judge(a, unanimous(VALID));
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Challenged), "one still open");
        vm.warp(block.timestamp + PERIOD);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.OpenChallenge.selector, JOB));
        poc.finalize(JOB);
        judge(b, unanimous(VALID));
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Committed), "none open");
        poc.finalize(JOB);
        assertEq(address(market).balance, 0, "escrow closed");
        assertEq(address(poc).balance, 3 * JUROR_STAKE, "only the jurors' stakes left");
    }

    function testChallengesAfterAFraudVerdictOnlyGetTheirBondBack() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        vm.startPrank(challenger);
        uint256 a = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "a")));
        uint256 b = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "b")));
        vm.stopPrank();
        judge(a, unanimous(FRAUD));
        // The job is over: no new challenge of it.
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.WrongStatus.selector, JOB, AIJobManager.Status.Slashed));
        poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "c")));
        uint256 ch = challenger.balance;
        uint256 stake = registry.getNode(NODE).stake;
        judge(b, unanimous(FRAUD));
        assertEq(challenger.balance - ch, MIN_BOND, "bond back, no second slash");
        assertEq(registry.getNode(NODE).stake, stake, "stake untouched");
        assertEq(uint256(manager.getJob(JOB).status), uint256(AIJobManager.Status.Slashed), "still slashed");
        assertEq(address(poc).balance - 3 * JUROR_STAKE + address(market).balance, 0, "nothing left behind");
    }

    function testSlashIsCappedAtTheStake() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        joinJurors(3);
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        registry.grantRole(registry.SLASHER(), admin);
        registry.slash(NODE, MIN_STAKE - 0.1 ether, stranger);
        vm.prank(challenger);
        uint256 id = poc.challenge{value: MIN_BOND}(JOB, claimForStep2(recs, w0, w1, rec(2, "a")));
        uint256 ch = challenger.balance;
        judge(id, unanimous(FRAUD));
        assertEq(challenger.balance - ch, MIN_BOND + 0.1 ether, "what stake was left");
        assertEq(registry.getNode(NODE).stake, 0, "stake gone");
    }

    function testOversizedValuesAreRefused() public {
        (bytes[] memory recs, bytes32 w0, bytes32 w1, bytes32 root) = threeStepTree();
        submitAndAssign(JOB, MAX, BUDGET);
        commitThree(root);
        uint256 huge = uint256(type(uint96).max) + 1;
        vm.deal(challenger, huge);
        vm.prank(challenger);
        vm.expectRevert(abi.encodeWithSelector(ProofOfCompute.BondTooHigh.selector, huge));
        poc.challenge{value: huge}(JOB, claimForStep2(recs, w0, w1, rec(2, "a")));
        vm.deal(submitter, huge);
        vm.prank(submitter);
        vm.expectRevert(abi.encodeWithSelector(DealMarket.EscrowTooLarge.selector, huge));
        manager.submitJob{value: huge}(bytes32("big"), SPEC, 1, PRICE);
    }
}
